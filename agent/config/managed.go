package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"howett.net/plist"
)

// ManagedPath is where macOS writes the com.annexa.agent payload of a
// configuration profile an MDM (Jamf, Kandji, Intune) installed for the
// device. packaging/macos/annexa-agent.mobileconfig is its template.
const ManagedPath = "/Library/Managed Preferences/com.annexa.agent.plist"

// Keys a profile has beyond agent.yaml's: what unattended enrollment needs.
const (
	ManagedEnrollmentToken = "enrollment_token"
	ManagedCACertificate   = "ca_certificate" // PEM, for a server whose CA is not in the system roots
)

// Managed is what a configuration profile sets.
type Managed struct {
	Path string
	// Settings are agent.yaml keys with the profile's values; they take
	// precedence over the file's.
	Settings        map[string]any
	EnrollmentToken string
	CACertificate   string
}

// Where a setting came from, as `annexa-agent status` says it.
const (
	SourceManaged = "managed preferences"
	SourceFile    = "agent.yaml"
	SourceDefault = "default"
)

// Sources says, for each top-level setting (and each collectors.NAME),
// where the value in force came from.
type Sources map[string]string

// ReadManaged reads a managed preferences plist (XML or binary). A file
// that is not there is no profile (nil, nil); a key agent.yaml does not
// know is an error naming it, as in agent.yaml: a typo in a profile pushed
// to a fleet must fail loudly.
func ReadManaged(path string) (*Managed, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if _, err := plist.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: not a property list: %w", path, err)
	}
	m := &Managed{Path: path, Settings: map[string]any{}}
	known := FileKeys()
	for k, v := range doc {
		switch {
		case strings.HasPrefix(k, "Payload"):
			// The profile's own bookkeeping (PayloadUUID, …).
		case k == ManagedEnrollmentToken || k == ManagedCACertificate:
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: %s must be a string", path, k)
			}
			if k == ManagedEnrollmentToken {
				m.EnrollmentToken = strings.TrimSpace(s)
			} else {
				if !strings.Contains(s, "-----BEGIN CERTIFICATE-----") {
					return nil, fmt.Errorf("%s: %s must be a PEM certificate", path, k)
				}
				m.CACertificate = s
			}
		case slices.Contains(known, k):
			m.Settings[k] = plainValue(v)
		default:
			return nil, fmt.Errorf("%s: unknown key %q (a profile takes agent.yaml's keys: %s; and %s, %s)",
				path, k, strings.Join(known, ", "), ManagedEnrollmentToken, ManagedCACertificate)
		}
	}
	return m, nil
}

// plainValue turns plist values into what YAML encodes as agent.yaml
// spells them: dates as RFC 3339, data as text.
func plainValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainValue(e)
		}
		return out
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case []byte:
		return string(x)
	}
	return v
}

// FileKeys are agent.yaml's top-level keys.
func FileKeys() []string {
	var out []string
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	sort.Strings(out)
	return out
}

// LoadLayered reads the config file (path; "" for none) and lays the
// profile's settings over it: a profile's map settings (collectors, a
// collector's block, shipping, …) merge key by key into the file's, and
// its other values replace the file's. It says where each setting came
// from.
func LoadLayered(path string, managed *Managed, known Known) (*Config, Sources, error) {
	doc := map[string]any{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			// Parse names the line.
			_, perr := Parse(b, known)
			if perr == nil {
				perr = err
			}
			return nil, nil, fmt.Errorf("%s: %w", path, perr)
		}
		if doc == nil {
			doc = map[string]any{}
		}
		if managed == nil {
			// The file alone: its own errors, with its own lines.
			c, err := Parse(b, known)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			return c, sourcesOf(doc, nil), nil
		}
	}
	var over map[string]any
	if managed != nil {
		over = managed.Settings
	}
	merged := merge(doc, over)
	b, err := yaml.Marshal(merged)
	if err != nil {
		return nil, nil, err
	}
	c, err := Parse(b, known)
	if err != nil {
		what := "the managed preferences"
		if managed != nil {
			what = managed.Path
		}
		if path != "" {
			what = path + " with " + what
		}
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return c, sourcesOf(doc, over), nil
}

// merge lays over onto base: maps merge key by key, anything else is
// replaced.
func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			out[k] = merge(bm, om)
			continue
		}
		out[k] = v
	}
	return out
}

func sourcesOf(file, managed map[string]any) Sources {
	s := Sources{}
	for _, k := range FileKeys() {
		s[k] = SourceDefault
	}
	mark := func(doc map[string]any, src string) {
		for k, v := range doc {
			s[k] = src
			if k == "collectors" {
				if cs, ok := v.(map[string]any); ok {
					for name := range cs {
						s["collectors."+name] = src
					}
				}
			}
		}
	}
	mark(file, SourceFile)
	mark(managed, SourceManaged)
	return s
}
