package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nvmftest/nvmftest/failover"
	"github.com/nvmftest/nvmftest/suites"
)

// validateResults validates b, a results.json, against ResultsSchema.
func validateResults(t *testing.T, name string, b []byte) {
	t.Helper()
	validate(t, "results.schema.json", name, b)
}

// validate validates b against the schema named schema (results.schema.json
// or run.schema.json, which refers to the other).
func validate(t *testing.T, schema, name string, b []byte) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for file, raw := range map[string][]byte{"results.schema.json": ResultsSchema, "run.schema.json": RunSchema} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		// Under the $id each file declares, so run.schema.json's relative
		// reference to results.schema.json resolves.
		if err := c.AddResource("https://github.com/nvmftest/nvmftest/reports/"+file, doc); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("https://github.com/nvmftest/nvmftest/reports/" + schema)
	if err != nil {
		t.Fatalf("%s: %v", schema, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not match %s: %v", name, schema, err)
	}
}

// TestResultsSchema: the results.json a run directory holds, and run.json's
// conformance, match the schema the README documents, whatever the run's
// outcome (failed, interrupted, unreachable).
func TestResultsSchema(t *testing.T) {
	for name, s := range map[string]func() suites.Summary{"failed": sampleSummary, "interrupted": interruptedSummary, "unreachable": unreachableSummary} {
		dir := t.TempDir()
		r := NewRun([]string{"nvmftest", "conform"})
		r.AddConformance(s())
		if err := r.Write(dir); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "conformance", "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		validateResults(t, name+" results.json", b)
		var run struct {
			Conformance json.RawMessage `json:"conformance"`
		}
		mustJSON(t, filepath.Join(dir, RunFile), &run)
		validateResults(t, name+" run.json conformance", run.Conformance)
	}
}

// TestLoadOldKeys: a run.json written before the keys became snake_case
// ("ID", "MandatoryFailed", "notrun") still loads, counts and all, so a
// committed baseline keeps comparing.
func TestLoadOldKeys(t *testing.T) {
	dir := t.TempDir()
	old := `{"command":["nvmftest","conform"],"started":"2026-11-22T04:00:00Z","elapsed_ns":1,
"conformance":{"target":"a","subnqn":"n","results":[
{"ID":"TCP-IC-001","Section":"s","Level":"mandatory","Title":"t","area":"transport","state":"passed","duration_ns":1},
{"ID":"TCP-PDU-004","Section":"s","Level":"mandatory","Title":"t","area":"transport","state":"failed","duration_ns":1}],
"findings":null,"Passed":1,"Failed":1,"Skipped":0,"notrun":0,"MandatoryFailed":1}}`
	if err := os.WriteFile(filepath.Join(dir, RunFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Conformance
	if s.Results[1].ID != "TCP-PDU-004" || s.Passed != 1 || s.Failed != 1 || s.MandatoryFailed != 1 || r.Passed() {
		t.Errorf("old run.json loads as %+v", s)
	}
	if v := r.Verdicts(); len(v) != 1 || !strings.HasPrefix(v[0].Text, "NOT CONFORMANT") {
		t.Errorf("verdicts %+v", v)
	}
}

// TestRunSchema: run.json matches run.schema.json for a run with every
// area, and for a real load against the reference target; lists are []
// or absent, never null.
func TestRunSchema(t *testing.T) {
	check := func(name string, r *Run) {
		t.Helper()
		dir := t.TempDir()
		if err := r.Write(dir); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, RunFile))
		if err != nil {
			t.Fatal(err)
		}
		validate(t, "run.schema.json", name+" run.json", b)
		if bytes.Contains(b, []byte("null")) {
			t.Errorf("%s run.json has a null", name)
		}
	}
	check("sample", sampleRun(t))
	r := NewRun([]string{"nvmftest", "failover"})
	r.AddFailover(&failover.Report{Scenario: "path-down", Target: "t"}) // a scenario that failed before any event
	check("empty failover", r)
	if testing.Short() {
		return
	}
	r = NewRun([]string{"nvmftest", "bench"})
	r.AddBench(realLoad(t))
	check("real bench", r)
}
