// Package catalog holds the ISO/IEC 27001:2022 Annex A catalog, the crosswalk
// from the 2013 numbering, and the mapping from Annexa's checks to controls.
// All three are data (configs/), so a customer can remap without rebuilding;
// this package loads and validates them.
package catalog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Control is one Annex A control.
type Control struct {
	ID    string `json:"id"`
	Theme string `json:"theme"`
	Title string `json:"title"`
}

// The four themes of Annex A 2022, with the clause each numbers under and
// the number of controls it has.
var themes = []struct {
	Name   string
	Clause string
	Count  int
}{
	{"Organizational", "5", 37},
	{"People", "6", 8},
	{"Physical", "7", 14},
	{"Technological", "8", 34},
}

// Total is the number of controls in Annex A 2022.
const Total = 93

// Catalog is a validated Annex A catalog with its 2013 crosswalk.
type Catalog struct {
	controls  []Control
	byID      map[string]int
	crosswalk map[string][]string // 2013 id → 2022 ids
}

var (
	id2022 = regexp.MustCompile(`^([5-8])\.([1-9][0-9]?)$`)
	id2013 = regexp.MustCompile(`^A\.([5-9]|1[0-8])\.[1-9][0-9]?\.[1-9][0-9]?$`)
)

// ErrUnknownControl is wrapped by every error about an id that is not in
// the catalog.
var ErrUnknownControl = errors.New("unknown control")

// Load reads the controls CSV (id,theme,title) and the crosswalk CSV
// (id2013,id2022) and validates them: well-formed unique ids, each under its
// theme's clause, 37/8/14/34 per theme, and every crosswalk target known.
func Load(controls, crosswalk io.Reader) (*Catalog, error) {
	c := &Catalog{byID: map[string]int{}, crosswalk: map[string][]string{}}
	rows, err := readCSV(controls, "id", "theme", "title")
	if err != nil {
		return nil, fmt.Errorf("controls: %w", err)
	}
	perTheme := map[string]int{}
	for _, r := range rows {
		id, theme, title := r.fields[0], r.fields[1], r.fields[2]
		m := id2022.FindStringSubmatch(id)
		if m == nil {
			return nil, fmt.Errorf("controls line %d: %w: malformed id %q", r.line, ErrUnknownControl, id)
		}
		clause := ""
		for _, t := range themes {
			if t.Name == theme {
				clause = t.Clause
			}
		}
		if clause == "" {
			return nil, fmt.Errorf("controls line %d: control %s: unknown theme %q", r.line, id, theme)
		}
		if m[1] != clause {
			return nil, fmt.Errorf("controls line %d: control %s is numbered under clause %s, but theme %s is clause %s", r.line, id, m[1], theme, clause)
		}
		if strings.TrimSpace(title) == "" {
			return nil, fmt.Errorf("controls line %d: control %s has no title", r.line, id)
		}
		if _, dup := c.byID[id]; dup {
			return nil, fmt.Errorf("controls line %d: control %s listed twice", r.line, id)
		}
		c.byID[id] = len(c.controls)
		c.controls = append(c.controls, Control{ID: id, Theme: theme, Title: title})
		perTheme[theme]++
	}
	for _, t := range themes {
		if perTheme[t.Name] != t.Count {
			return nil, fmt.Errorf("controls: theme %s has %d controls, Annex A 2022 has %d", t.Name, perTheme[t.Name], t.Count)
		}
	}
	sort.SliceStable(c.controls, func(i, j int) bool { return Less(c.controls[i].ID, c.controls[j].ID) })
	for i, ctl := range c.controls {
		c.byID[ctl.ID] = i
	}

	rows, err = readCSV(crosswalk, "id2013", "id2022")
	if err != nil {
		return nil, fmt.Errorf("crosswalk: %w", err)
	}
	for _, r := range rows {
		old, now := r.fields[0], r.fields[1]
		if !id2013.MatchString(old) {
			return nil, fmt.Errorf("crosswalk line %d: malformed 2013 id %q", r.line, old)
		}
		if _, ok := c.byID[now]; !ok {
			return nil, fmt.Errorf("crosswalk line %d: %s maps to %w %q", r.line, old, ErrUnknownControl, now)
		}
		c.crosswalk[old] = append(c.crosswalk[old], now)
	}
	return c, nil
}

// Controls returns all controls in Annex A order.
func (c *Catalog) Controls() []Control { return append([]Control(nil), c.controls...) }

// Control returns the control with a 2022 id.
func (c *Catalog) Control(id string) (Control, bool) {
	i, ok := c.byID[id]
	if !ok {
		return Control{}, false
	}
	return c.controls[i], true
}

// Resolve turns an id as people write it into 2022 ids: "8.24", "A.8.24"
// (2022 with the annex prefix), or a 2013 id such as "A.10.1.1", which may
// map to more than one 2022 control.
func (c *Catalog) Resolve(id string) ([]string, error) {
	id = strings.TrimSpace(id)
	if _, ok := c.byID[id]; ok {
		return []string{id}, nil
	}
	if ids, ok := c.crosswalk[id]; ok {
		return append([]string(nil), ids...), nil
	}
	if s, ok := strings.CutPrefix(id, "A."); ok {
		if _, ok := c.byID[s]; ok {
			return []string{s}, nil
		}
	}
	return nil, fmt.Errorf("%w %q (want a 2022 id such as 8.24, or a 2013 id such as A.10.1.1)", ErrUnknownControl, id)
}

// Less orders control ids numerically: 5.2 before 5.10.
func Less(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, errx := strconv.Atoi(strings.TrimPrefix(pa[i], "A"))
		y, erry := strconv.Atoi(strings.TrimPrefix(pb[i], "A"))
		if errx != nil || erry != nil {
			if pa[i] != pb[i] {
				return pa[i] < pb[i]
			}
			continue
		}
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

type csvRow struct {
	line   int
	fields []string
}

func readCSV(r io.Reader, header ...string) ([]csvRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for i, h := range header {
		if strings.TrimSpace(strings.TrimPrefix(head[i], "\ufeff")) != h {
			return nil, fmt.Errorf("header column %d is %q, want %q", i+1, head[i], h)
		}
	}
	var rows []csvRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		rows = append(rows, csvRow{line: line, fields: rec})
	}
}
