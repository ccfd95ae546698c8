package e2e

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// validateOSCAL checks a document against NIST's OSCAL 1.2.2 JSON schema
// (testdata/oscal_complete_schema-1.2.2.json, a copy of shared/reference).
func validateOSCAL(t *testing.T, doc []byte) {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("testdata/oscal_complete_schema-1.2.2.json")
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(v))
	var m map[string]any
	require.NoError(t, json.Unmarshal(doc, &m))
	require.Contains(t, m, "assessment-results")
}
