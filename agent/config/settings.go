package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/annexa-dev/annexa/collectors"
)

// decode turns the collector's settings block into its settings struct:
// every key must be one the struct has, every value of the field's type
// and shape, and the result must pass the collector's Validate. Errors
// name the collector, the key and the line, as a person fixing the file
// needs them.
func (col *Collector) decode(name string, defaults func() collectors.Settings) error {
	n := &col.Settings
	empty := n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
	if defaults == nil {
		if !empty {
			return fmt.Errorf("line %d: collectors.%s.settings: %s takes no settings", n.Line, name, name)
		}
		return nil
	}
	s := defaults()
	if !empty {
		if err := decodeStrict(n, s, "collectors."+name+".settings"); err != nil {
			return err
		}
	}
	if err := s.Validate(); err != nil {
		line := n.Line
		if line == 0 {
			line = col.line
		}
		return fmt.Errorf("line %d: collectors.%s.settings: %w", line, name, err)
	}
	col.decoded = s
	return nil
}

// decodeStrict decodes a mapping node into the struct into points to, key
// by key, so that an unknown key or a value of the wrong type names the key
// and its line. (yaml.Node.Decode has no strict mode of its own.)
func decodeStrict(n *yaml.Node, into any, path string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s: want a mapping of settings (key: value)", n.Line, path)
	}
	v := reflect.ValueOf(into).Elem()
	fields := map[string]int{}
	for i := 0; i < v.NumField(); i++ {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	var errs []string
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fi, ok := fields[k.Value]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("line %d: %s.%s: unknown key (%s)", k.Line, path, k.Value, takes(fields)))
			continue
		case seen[k.Value]:
			errs = append(errs, fmt.Sprintf("line %d: %s.%s: given twice", k.Line, path, k.Value))
			continue
		}
		seen[k.Value] = true
		f := v.Field(fi)
		if err := val.Decode(f.Addr().Interface()); err != nil {
			errs = append(errs, fmt.Sprintf("line %d: %s.%s: %s", val.Line, path, k.Value, typeError(err, f.Type())))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func takes(fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return "takes " + strings.Join(names, ", ")
}

var yamlLine = regexp.MustCompile(`^(yaml: unmarshal errors:\s*)?(line \d+: )?`)

// typeError says what the value should have been, in the file's words.
func typeError(err error, t reflect.Type) string {
	msg := yamlLine.ReplaceAllString(strings.TrimSpace(err.Error()), "")
	if strings.HasPrefix(msg, "cannot unmarshal") {
		got := ""
		if i := strings.Index(msg, "`"); i >= 0 {
			if j := strings.Index(msg[i+1:], "`"); j >= 0 {
				got = msg[i+1 : i+1+j]
			}
		}
		if got != "" {
			return fmt.Sprintf("want %s, got %q", kind(t), got)
		}
		return "want " + kind(t)
	}
	return msg
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(kind(t.Elem()), "a ") + "s (e.g. [a, b])"
	case reflect.Int, reflect.Int64, reflect.Int32:
		if t.Name() == "Duration" {
			return "a duration (e.g. 30s, 15m, 6h, 7d)"
		}
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return t.String()
}
