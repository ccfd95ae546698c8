// Command nfpmbuild builds Annexa's .deb and .rpm packages with nfpm as a
// library (no other binaries downloaded): `make package` runs it once per
// package and architecture.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

func main() {
	config := flag.String("config", "", "nfpm config (packaging/nfpm/*.yaml)")
	arch := flag.String("arch", "amd64", "amd64 or arm64")
	version := flag.String("version", "0.1.0", "package version")
	bin := flag.String("bin", "bin", "folder holding the binaries for -arch")
	out := flag.String("out", "dist", "output folder")
	formats := flag.String("formats", "deb,rpm", "package formats")
	signKey := flag.String("sign-key", os.Getenv("ANNEXA_SIGNING_KEY"), "OpenPGP secret key (armored or binary) to sign the packages with; default $ANNEXA_SIGNING_KEY, none: unsigned. Its passphrase: $ANNEXA_SIGNING_PASSPHRASE")
	flag.Parse()
	sign := signing{key: *signKey, passphrase: os.Getenv("ANNEXA_SIGNING_PASSPHRASE")}
	if err := build(*config, *arch, *version, *bin, *out, strings.Split(*formats, ","), sign); err != nil {
		fmt.Fprintln(os.Stderr, "nfpmbuild:", err)
		os.Exit(1)
	}
}

// signing is the key packages are signed with (nfpm's own OpenPGP
// signing: a debsign "origin" signature in the .deb, an RPM header
// signature), none when key is empty.
type signing struct{ key, passphrase string }

func (s signing) apply(info *nfpm.Info) error {
	if s.key == "" {
		return nil
	}
	if _, err := os.Stat(s.key); err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	sig := nfpm.PackageSignature{KeyFile: s.key, KeyPassphrase: s.passphrase}
	info.Deb.Signature.PackageSignature = sig
	info.Deb.Signature.Type = "origin"
	info.RPM.Signature.PackageSignature = sig
	return nil
}

func build(config, arch, version, bin, out string, formats []string, sign signing) error {
	cfg, err := nfpm.ParseFileWithEnvMapping(config, func(k string) string {
		switch k {
		case "ARCH":
			return arch
		case "VERSION":
			return version
		case "BIN":
			return bin
		}
		return os.Getenv(k)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, format := range formats {
		info, err := cfg.Get(format)
		if err != nil {
			return err
		}
		info = nfpm.WithDefaults(info)
		if err := sign.apply(info); err != nil {
			return err
		}
		if err := nfpm.Validate(info); err != nil {
			return fmt.Errorf("%s %s: %w", config, format, err)
		}
		p, err := nfpm.Get(format)
		if err != nil {
			return err
		}
		path := filepath.Join(out, p.ConventionalFileName(info))
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := p.Package(info, f); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Println(path)
	}
	return nil
}
