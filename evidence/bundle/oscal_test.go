package bundle

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// One passing, one failing and one not-applicable asset, as the summary
// builder makes them.
func oscalFixture() *Summary {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ref := func(check, status string, idx int64) CheckRef {
		return CheckRef{Check: check, Status: status, Reason: check + " " + status, CollectedAt: at, LogIndex: idx, Digest: "ab12"}
	}
	return &Summary{
		Scope: Scope{From: at.Add(-24 * time.Hour), To: at, Freshness: "26h"},
		Controls: []ControlSummary{
			{Control: "8.24", Passing: 1, Failing: 1, Assets: []AssetStatus{
				{Asset: "host:web-1", Status: "passing", Checks: []CheckRef{ref("disk_encryption.root_volume", "pass", 3)}},
				{Asset: "host:db-1", Status: "failing", Checks: []CheckRef{ref("disk_encryption.root_volume", "fail", 4)}},
			}},
			{Control: "8.1", Assets: []AssetStatus{
				{Asset: "aws-account:111122223333", Status: "not_applicable", Checks: []CheckRef{ref("screen_lock.enabled", "not_applicable", 5)}},
			}},
		},
	}
}

func TestOSCALDocument(t *testing.T) {
	doc, err := OSCAL(oscalFixture(), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "annexa.example/log")
	require.NoError(t, err)

	// NIST's OSCAL 1.2.2 schema accepts it.
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../../test/e2e/testdata/oscal_complete_schema-1.2.2.json")
	require.NoError(t, err)
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(v))

	var d struct {
		AR struct {
			ImportAP   struct{ Href string } `json:"import-ap"`
			BackMatter struct {
				Resources []struct {
					UUID        string `json:"uuid"`
					Description string `json:"description"`
					Rlinks      []struct{ Href string }
				} `json:"resources"`
			} `json:"back-matter"`
			Results []struct {
				Local struct {
					Items []struct {
						UUID  string      `json:"uuid"`
						Props []oscalProp `json:"props"`
					} `json:"inventory-items"`
				} `json:"local-definitions"`
				Observations []oscalObservation `json:"observations"`
				Findings     []oscalFinding     `json:"findings"`
			} `json:"results"`
		} `json:"assessment-results"`
	}
	require.NoError(t, json.Unmarshal(doc, &d))
	res := d.AR.Results[0]

	// Every property Annexa defines carries its namespace.
	for _, o := range res.Observations {
		for _, p := range o.Props {
			require.Equal(t, NS, p.NS, p.Name)
		}
	}
	for _, f := range res.Findings {
		for _, p := range f.Props {
			require.Equal(t, NS, p.NS, p.Name)
		}
	}

	// Not applicable is never satisfied.
	states := map[string]string{}
	for _, f := range res.Findings {
		states[f.Title] = f.Target.Status.State
		if f.Title == "Annex A 8.1 on aws-account:111122223333" {
			require.NotNil(t, f.Target.ImplementationStatus)
			require.Equal(t, "not-applicable", f.Target.ImplementationStatus.State)
		}
	}
	require.Equal(t, map[string]string{"Annex A 8.24 on host:web-1": "satisfied", "Annex A 8.24 on host:db-1": "not-satisfied",
		"Annex A 8.1 on aws-account:111122223333": "not-satisfied"}, states)

	// Every subject an observation names is defined.
	defined := map[string]bool{}
	for _, it := range res.Local.Items {
		defined[it.UUID] = true
	}
	require.Len(t, defined, 3)
	for _, o := range res.Observations {
		for _, s := range o.Subjects {
			require.True(t, defined[s.SubjectUUID], "subject %s of %s", s.Title, o.Title)
		}
	}

	// import-ap resolves, inside the document, to the plan followed.
	require.Equal(t, "#"+d.AR.BackMatter.Resources[0].UUID, d.AR.ImportAP.Href)
	require.Contains(t, d.AR.BackMatter.Resources[0].Description, "newest result of every mapped check within its freshness window (default 26h")
	require.Equal(t, "mapping.yaml", d.AR.BackMatter.Resources[0].Rlinks[0].Href)
}
