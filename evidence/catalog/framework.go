package catalog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Framework is another framework's requirements mapped onto Annex A 2022
// controls (NIST CSF, CIS Controls, the 2013 Annex A…), so that the fleet's
// state can be read per requirement of that framework through the mapping.
// A mapping is data: Annexa ships only mappings from a published source,
// which the file cites; an organisation adds its own files.
type Framework struct {
	// Name is the file's base name: what --framework takes.
	Name   string `json:"name"`
	Title  string `json:"title"`
	Source string `json:"source"`
	// Note is anything else the file says about the mapping.
	Note         string        `json:"note,omitempty"`
	Requirements []Requirement `json:"requirements"`
}

// Requirement is one requirement of a framework and the Annex A 2022
// controls it maps to.
type Requirement struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Controls []string `json:"controls"`
}

// FrameworkName is the form of a framework's name (its file's base name).
var FrameworkName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// LoadFramework reads a framework mapping: "# title:" and "# source:"
// comment lines (both required: a mapping says where it comes from), then
// CSV rows id,title,annex_a_2022 with the controls separated by spaces or
// semicolons. Every control must be in cat, every id once.
func LoadFramework(name string, r io.Reader, cat *Catalog) (*Framework, error) {
	if !FrameworkName.MatchString(name) {
		return nil, fmt.Errorf("framework name %q: lower-case letters, digits, '.', '-' and '_'", name)
	}
	f := &Framework{Name: name}
	var body strings.Builder
	raw, err := io.ReadAll(io.LimitReader(r, 8<<20))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		text, ok := strings.CutPrefix(strings.TrimSpace(line), "#")
		if !ok {
			body.WriteString(line)
			body.WriteByte('\n')
			continue
		}
		body.WriteByte('\n') // keeps the CSV reader's line numbers the file's
		key, value, ok := strings.Cut(text, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "title":
			f.Title = value
		case "source":
			f.Source = value
		case "note":
			f.Note = value
		}
	}
	if f.Title == "" || f.Source == "" {
		return nil, errors.New(`a framework mapping names its title and its published source ("# title: …", "# source: …" lines)`)
	}
	cr := csv.NewReader(strings.NewReader(body.String()))
	cr.FieldsPerRecord = 3
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if strings.Join(header, ",") != "id,title,annex_a_2022" {
		return nil, fmt.Errorf("header %q: want id,title,annex_a_2022", strings.Join(header, ","))
	}
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		req := Requirement{ID: strings.TrimSpace(rec[0]), Title: strings.TrimSpace(rec[1])}
		if req.ID == "" || seen[req.ID] {
			return nil, fmt.Errorf("line %d: requirement id %q empty or repeated", line, req.ID)
		}
		seen[req.ID] = true
		for _, c := range strings.FieldsFunc(rec[2], func(r rune) bool { return r == ' ' || r == ';' }) {
			if _, ok := cat.Control(c); !ok {
				return nil, fmt.Errorf("line %d: %s maps to %q: %w (want Annex A 2022 ids such as 5.1)", line, req.ID, c, ErrUnknownControl)
			}
			req.Controls = append(req.Controls, c)
		}
		if len(req.Controls) == 0 {
			return nil, fmt.Errorf("line %d: %s maps to no Annex A control", line, req.ID)
		}
		f.Requirements = append(f.Requirements, req)
	}
	if len(f.Requirements) == 0 {
		return nil, errors.New("no requirements")
	}
	return f, nil
}
