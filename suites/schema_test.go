package suites

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// resultsSchema is results.json's JSON Schema, kept with the reports
// package (which embeds it as reports.ResultsSchema).
const resultsSchema = "../reports/results.schema.json"

// checkResultsSchema validates a results.json against resultsSchema.
func checkResultsSchema(t *testing.T, b []byte) {
	t.Helper()
	if err := validateResults(b); err != nil {
		t.Errorf("results.json does not match %s: %v", resultsSchema, err)
	}
}

func validateResults(b []byte) error {
	f, err := os.Open(resultsSchema)
	if err != nil {
		return err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("results.schema.json", doc); err != nil {
		return err
	}
	sch, err := c.Compile("results.schema.json")
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// TestResultsJSON: results.json has one key style (snake_case), lists
// that are [] and never null, the run's verdict and each check's, and
// matches the schema it is documented by.
func TestResultsJSON(t *testing.T) {
	s := junitSample()
	s.Interrupted = nil
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkResultsSchema(t, b)
	for _, bad := range []string{`"ID"`, `"Section"`, `"Level"`, `"Title"`, `"Passed"`, `"MandatoryFailed"`, `"notrun":`, "null"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("results.json has %s", bad)
		}
	}
	for _, want := range []string{`"verdict": "not_conformant"`, `"verdict": "fail"`, `"verdict": "interrupted"`, `"needs": "--restricted-nqn NQN"`, `"mandatory_failed": 1`, `"findings": []`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("results.json lacks %s", want)
		}
	}
	var back Summary
	if err := json.Unmarshal(b, &back); err != nil || back.MandatoryFailed != s.MandatoryFailed || len(back.Results) != len(s.Results) || back.Results[2].Needs != "--restricted-nqn NQN" {
		t.Errorf("results.json does not read back: %v %+v", err, back)
	}
	// An empty run: lists, not nulls.
	b, _ = json.Marshal(Summary{})
	if bytes.Contains(b, []byte("null")) {
		t.Errorf("empty summary: %s", b)
	}
	checkResultsSchema(t, b)
	// The schema is strict enough to catch the old shape.
	old := strings.NewReplacer(`"id"`, `"ID"`).Replace(string(b))
	if validateResults([]byte(`{"results":[{"ID":"X"}],"findings":null}`)) == nil || validateResults([]byte(old)) == nil && old != string(b) {
		t.Error("the schema accepts results.json's old shape")
	}
}
