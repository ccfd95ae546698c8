// Package configs ships Annexa's data files inside the binaries: the Annex A
// catalog, the 2013 crosswalk, the check→control mapping and the sample
// configurations. The files in this folder are the source; a deployment can
// override any of them from disk.
package configs

import (
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/annexa-dev/annexa/evidence/catalog"
)

// FS holds the data files of this folder.
//
//go:embed annex-a-2022.csv annex-a-2013-to-2022.csv mapping.yaml frameworks/*.csv
var FS embed.FS

// Catalog loads the shipped Annex A catalog and crosswalk.
func Catalog() (*catalog.Catalog, error) {
	c, err := FS.Open("annex-a-2022.csv")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	x, err := FS.Open("annex-a-2013-to-2022.csv")
	if err != nil {
		return nil, err
	}
	defer x.Close()
	return catalog.Load(c, x)
}

// Mapping loads the check→control mapping from path, or the shipped one when
// path is empty, and validates it against cat.
func Mapping(cat *catalog.Catalog, path string) (*catalog.Mapping, error) {
	var r io.ReadCloser
	var err error
	if path == "" {
		r, err = FS.Open("mapping.yaml")
	} else {
		r, err = os.Open(path)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m, err := catalog.LoadMapping(r, cat)
	if err != nil && path != "" {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, err
}

// Frameworks loads the shipped framework mappings (frameworks/*.csv), then
// those in dir (an organisation's own, "" for none), which may replace a
// shipped one of the same name.
func Frameworks(cat *catalog.Catalog, dir string) (map[string]*catalog.Framework, error) {
	out := map[string]*catalog.Framework{}
	load := func(fsys fs.FS, base string) error {
		names, err := fs.Glob(fsys, "*.csv")
		if err != nil {
			return err
		}
		for _, n := range names {
			f, err := fsys.Open(n)
			if err != nil {
				return err
			}
			fw, err := catalog.LoadFramework(strings.TrimSuffix(n, ".csv"), f, cat)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(base, n), err)
			}
			out[fw.Name] = fw
		}
		return nil
	}
	shipped, err := fs.Sub(FS, "frameworks")
	if err != nil {
		return nil, err
	}
	if err := load(shipped, "frameworks"); err != nil {
		return nil, err
	}
	if dir != "" {
		if err := load(os.DirFS(dir), dir); err != nil {
			return nil, err
		}
	}
	return out, nil
}
