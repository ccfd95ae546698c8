package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/annexa-dev/annexa/configs"
	"github.com/annexa-dev/annexa/evidence/catalog"
)

// The shipped mappings load, cite their source, and agree with the
// catalog's own 2013 crosswalk.
func TestShippedFrameworks(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	fws, err := configs.Frameworks(cat, "")
	require.NoError(t, err)
	iso := fws["iso27001-2013"]
	require.NotNil(t, iso)
	assert.Contains(t, iso.Source, "ISO/IEC 27002:2022, Annex B")
	assert.Len(t, iso.Requirements, 114, "Annex A 2013 has 114 controls")
	for _, r := range iso.Requirements {
		ids, err := cat.Resolve(r.ID)
		require.NoError(t, err, r.ID)
		assert.ElementsMatch(t, ids, r.Controls, r.ID)
		assert.NotEmpty(t, r.Title, r.ID)
	}
}

func TestFrameworkValidation(t *testing.T) {
	cat, err := configs.Catalog()
	require.NoError(t, err)
	const head = "# title: Example\n# source: Example mapping v1, https://example.org/mapping\nid,title,annex_a_2022\n"
	for name, tc := range map[string]struct{ body, want string }{
		"no source":       {"# title: Example\nid,title,annex_a_2022\nX-1,One,5.1\n", "published source"},
		"bad header":      {"# title: x\n# source: y\nid,name,controls\nX-1,One,5.1\n", "header"},
		"unknown control": {head + "X-1,One,5.1 9.9\n", "unknown control"},
		"repeated id":     {head + "X-1,One,5.1\nX-1,Again,5.2\n", "repeated"},
		"no control":      {head + "X-1,One,\n", "no Annex A control"},
		"nothing":         {head, "no requirements"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := catalog.LoadFramework("example", strings.NewReader(tc.body), cat)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	fw, err := catalog.LoadFramework("example", strings.NewReader(head+"X-1,\"One, with a comma\",5.1; 8.24\n# a comment\nX-2,Two,8.5\n"), cat)
	require.NoError(t, err)
	require.Len(t, fw.Requirements, 2)
	assert.Equal(t, []string{"5.1", "8.24"}, fw.Requirements[0].Controls)
	assert.Equal(t, "One, with a comma", fw.Requirements[0].Title)

	// An organisation's own file beside the shipped ones.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "our-policy.csv"), []byte(head+"P-1,Laptops encrypted,8.24 8.1\n"), 0o600))
	fws, err := configs.Frameworks(cat, dir)
	require.NoError(t, err)
	assert.Contains(t, fws, "our-policy")
	assert.Contains(t, fws, "iso27001-2013")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken.csv"), []byte("id,title,annex_a_2022\n"), 0o600))
	_, err = configs.Frameworks(cat, dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken.csv")
}
