package catalog_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence/catalog"
)

func TestShippedCatalog(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	ctls := cat.Controls()
	require.Len(t, ctls, catalog.Total)
	perTheme := map[string]int{}
	for _, c := range ctls {
		perTheme[c.Theme]++
	}
	require.Equal(t, map[string]int{"Organizational": 37, "People": 8, "Physical": 14, "Technological": 34}, perTheme)
	require.Equal(t, "5.1", ctls[0].ID)
	require.Equal(t, "8.34", ctls[len(ctls)-1].ID)
	c, ok := cat.Control("8.24")
	require.True(t, ok)
	require.Equal(t, "Use of cryptography", c.Title)

	// The shipped copies match the reference in ../shared when it is there.
	for _, f := range []string{"annex-a-2022.csv", "annex-a-2013-to-2022.csv"} {
		ref, err := os.ReadFile("../../../shared/" + f)
		if err != nil {
			continue
		}
		ours, err := configs.FS.ReadFile(f)
		require.NoError(t, err)
		require.Equal(t, string(ref), string(ours), f)
	}
}

func TestResolve(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	for in, want := range map[string][]string{
		"8.24":     {"8.24"},
		"A.8.24":   {"8.24"},
		"A.10.1.1": {"8.24"},
		"A.18.2.3": {"5.36", "8.8"},
		" 5.1 ":    {"5.1"},
		"A.12.4.1": {"8.15"},
	} {
		got, err := cat.Resolve(in)
		require.NoError(t, err, in)
		require.ElementsMatch(t, want, got, in)
	}
	for _, bad := range []string{"9.1", "8.35", "A.10.1.9", "", "x"} {
		_, err := cat.Resolve(bad)
		require.ErrorIs(t, err, catalog.ErrUnknownControl, bad)
		require.ErrorContains(t, err, `"`+strings.TrimSpace(bad)+`"`)
	}
}

func TestCatalogValidation(t *testing.T) {
	good, err := configs.FS.ReadFile("annex-a-2022.csv")
	require.NoError(t, err)
	xw, err := configs.FS.ReadFile("annex-a-2013-to-2022.csv")
	require.NoError(t, err)
	load := func(controls, crosswalk string) error {
		_, err := catalog.Load(strings.NewReader(controls), strings.NewReader(crosswalk))
		return err
	}
	require.NoError(t, load(string(good), string(xw)))

	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	cases := map[string]struct{ controls, crosswalk, want string }{
		"missing control": {strings.Join(lines[:len(lines)-1], "\n"), string(xw), "theme Technological has 33 controls"},
		"duplicate":       {string(good) + "8.34,Technological,Again\n", string(xw), "8.34 listed twice"},
		"wrong clause":    {strings.Replace(string(good), "5.1,Organizational", "6.99,Organizational", 1), string(xw), "clause 6"},
		"bad id":          {strings.Replace(string(good), "5.1,", "5.x,", 1), string(xw), `"5.x"`},
		"bad theme":       {strings.Replace(string(good), "5.1,Organizational", "5.1,Organisational", 1), string(xw), `"Organisational"`},
		"bad crosswalk":   {string(good), string(xw) + "A.5.1.1,9.9\n", `"9.9"`},
		"bad header":      {"a,b,c\n", string(xw), "header"},
	}
	for name, tc := range cases {
		err := load(tc.controls, tc.crosswalk)
		require.ErrorContains(t, err, tc.want, name)
	}
}

func TestShippedMapping(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	m, err := configs.Mapping(cat, "")
	require.NoError(t, err)
	require.Equal(t, []string{"8.24", "8.1"}, m.Controls("disk_encryption.system_volume"))
	require.Contains(t, m.Checks("8.24"), "disk_encryption.swap")
	require.Contains(t, m.Covered(), "8.20")
	for _, c := range m.Covered() {
		_, ok := cat.Control(c)
		require.True(t, ok, c)
	}
}

func TestMappingValidation(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	cases := map[string]string{
		"checks:\n  a.b: [\"8.24\"]\n  c.d: [\"9.99\"]\n": `line 3: check c.d: unknown control "9.99"`,
		"checks:\n  a.b: []\n":                            "line 2: check a.b: want a non-empty list",
		"checks:\n  Bad: [\"8.24\"]\n":                    `line 2: check id "Bad"`,
		"other: 1\n":                                      `line 1: unknown key "other"`,
		"checks:\n  a.b: [\"8.1\"]\n  a.b: [\"8.2\"]\n":   "listed twice",
		"[1, 2]\n": "top-level 'checks:'",
	}
	for in, want := range cases {
		_, err := catalog.LoadMapping(strings.NewReader(in), cat)
		require.ErrorContains(t, err, want, in)
	}
	// 2013 ids are translated.
	m, err := catalog.LoadMapping(strings.NewReader("checks:\n  x.y: [\"A.10.1.1\", \"8.24\"]\n"), cat)
	require.NoError(t, err)
	require.Equal(t, []string{"8.24"}, m.Controls("x.y"))
}

func TestLess(t *testing.T) {
	require.True(t, catalog.Less("5.2", "5.10"))
	require.True(t, catalog.Less("5.37", "6.1"))
	require.False(t, catalog.Less("8.1", "8.1"))
}

func TestMappingFreshness(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	m, err := catalog.LoadMapping(strings.NewReader("checks:\n  a.b: {controls: [\"8.24\"], freshness: 8d}\n  c.d: [\"8.1\"]\n  e.f: {controls: [\"8.1\"], freshness: 90m}\n"), cat)
	require.NoError(t, err)
	require.Equal(t, 8*24*time.Hour, m.Freshness("a.b", time.Hour))
	require.Equal(t, time.Hour, m.Freshness("c.d", time.Hour))
	require.Equal(t, 90*time.Minute, m.Freshness("e.f", time.Hour))
	require.Equal(t, []string{"8.24"}, m.Controls("a.b"))
	for in, want := range map[string]string{
		"checks:\n  a.b: {controls: [\"8.24\"], freshness: soon}\n": `line 2: check a.b: freshness "soon"`,
		"checks:\n  a.b: {controls: [\"8.24\"], fresh: 1h}\n":       `line 2: check a.b: unknown key "fresh"`,
		"checks:\n  a.b: {freshness: 1h}\n":                         "want a non-empty list",
	} {
		_, err := catalog.LoadMapping(strings.NewReader(in), cat)
		require.ErrorContains(t, err, want, in)
	}
}
