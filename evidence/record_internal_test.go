package evidence

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// parseStd is ParseRecord with encoding/json, the reference reading.
func parseStd(payload []byte) (*Statement, error) {
	var ps parsedStatement
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ps); err != nil {
		return nil, err
	}
	// Only whitespace may follow the statement (Decoder.More would let a
	// stray "}" through; the old ParseRecord did, the fuzzer found it).
	if len(bytes.TrimSpace(payload[dec.InputOffset():])) > 0 {
		return nil, ErrMalformedRecord
	}
	st := ps.Statement
	st.Predicate = ps.Predicate.Predicate
	st.Predicate.Results = ps.Predicate.Results.list
	if err := st.validate(ps.Predicate.Results.digest); err != nil {
		return nil, err
	}
	return &st, nil
}

func samplePayload(t testing.TB) []byte {
	st, err := NewStatement("host:ag-1", Predicate{AgentID: "ag-1", Seq: 7, Prev: Digest([]byte("p")), Collector: "ssh", CollectorVersion: "1.0.0",
		CollectedAt: time.Date(2026, 11, 27, 4, 0, 0, 123, time.UTC),
		Results: []Result{{Check: "ssh.root_login", Status: Pass, Reason: "PermitRootLogin no <ok> & \u00e9", Observations: Observe(map[string]any{"lines": []string{"permitrootlogin no"}, "n": 1.5})},
			{Check: "ssh.ciphers", Status: Fail, Reason: "weak", Observations: json.RawMessage(`{"a":[1,2,{"b":null}]}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A record as Annexa writes it is checked on the digest of its raw results,
// with no re-marshalling.
func TestRawResultsDigestIsTheSubjectDigest(t *testing.T) {
	payload := samplePayload(t)
	var ps parsedStatement
	if err := json.Unmarshal(payload, &ps); err != nil {
		t.Fatal(err)
	}
	if ps.Predicate.Results.digest != ps.Subject[0].Digest["sha256"] {
		t.Fatal("the raw results' digest is not the subject digest")
	}
}

// ParseRecord (goccy/go-json) accepts exactly what encoding/json accepts,
// and reads it the same.
func FuzzParseRecordMatchesEncodingJSON(f *testing.F) {
	f.Add(samplePayload(f))
	f.Add([]byte(`{"_type":"x","subject":[],"predicateType":"y","predicate":{"seq":1,"results":null}}`))
	f.Add(bytes.Replace(samplePayload(f), []byte(`"seq":7`), []byte(`"seq":7,"seq":8`), 1))
	f.Add(bytes.Replace(samplePayload(f), []byte(`"check"`), []byte(`"CHECK"`), 1))
	f.Add(bytes.Replace(samplePayload(f), []byte(`"seq":7`), []byte(`"seq":7,"x":1`), 1))
	f.Add(append(samplePayload(f), ' ', '\n'))
	f.Add(bytes.Replace(samplePayload(f), []byte(`"reason":"weak"`), []byte(`"reason":"we\u00e9ak\ud800"`), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseRecord(b)
		std, stdErr := parseStd(b)
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("ParseRecord err=%v, encoding/json err=%v for %q", err, stdErr, b)
		}
		if err == nil && !reflect.DeepEqual(rec.Statement, *std) {
			t.Fatalf("readings differ for %q:\n%+v\n%+v", b, rec.Statement, *std)
		}
	})
}

// Unknown fields are refused at every level, as DisallowUnknownFields does.
func TestParseRecordRefusesUnknownFields(t *testing.T) {
	p := samplePayload(t)
	for _, mut := range [][2]string{
		{`"_type":`, `"extra":1,"_type":`},
		{`"seq":7`, `"seq":7,"sneaky":true`},
		{`"check":"ssh.ciphers"`, `"check":"ssh.ciphers","note":"x"`},
		{`"name":"host:ag-1"`, `"name":"host:ag-1","uri":"x"`},
	} {
		b := bytes.Replace(p, []byte(mut[0]), []byte(mut[1]), 1)
		if bytes.Equal(b, p) {
			t.Fatalf("mutation %q did not apply", mut[0])
		}
		if _, err := ParseRecord(b); err == nil {
			t.Fatalf("accepted an unknown field: %s", mut[1])
		}
		if _, err := parseStd(b); err == nil {
			t.Fatalf("encoding/json accepted an unknown field: %s", mut[1])
		}
	}
	if _, err := ParseRecord(append(append([]byte(nil), p...), []byte(" {}")...)); err == nil {
		t.Fatal("accepted trailing data")
	}
}
