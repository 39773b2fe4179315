package hostconform

import (
	"context"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/initiator"
)

// TestSensitivity: every host check fails against our own initiator with
// the deviation it exists for (TestSelfPassesAll shows each passes with
// none), so no check passes a host whatever it does.
func TestSensitivity(t *testing.T) {
	for _, c := range Checks() {
		t.Run(c.ID+"/"+c.Deviation, func(t *testing.T) {
			t.Parallel()
			cfg, h := selfConfig(c.Deviation)
			defer h.Close()
			sum, err := Run(context.Background(), cfg, nil, RunOptions{Only: []string{c.ID}})
			if err != nil {
				t.Fatal(err)
			}
			if len(sum.Results) != 1 {
				t.Fatalf("%d results", len(sum.Results))
			}
			r := sum.Results[0]
			switch {
			case !r.Failed():
				t.Errorf("%s passed (state %s %s) against a host with deviation %s", c.ID, r.State, r.Message, c.Deviation)
			case !strings.Contains(r.Message, "host did"):
				// It must fail on its verdict (T.Conform), not on
				// something the deviation broke on the way.
				t.Errorf("%s failed, but not on its verdict: %s", c.ID, r.Message)
			default:
				t.Logf("%s: %s", r.State, r.Message)
			}
		})
	}
}

// TestSensitivityCoverage: every check names a deviation the initiator
// has, and every deviation is some check's (one nobody catches would be
// a rule no check enforces, or a leftover).
func TestSensitivityCoverage(t *testing.T) {
	known := map[string]bool{}
	for _, d := range initiator.HostDeviations() {
		known[d.Name] = true
		if d.Breaks == "" || d.Does == "" {
			t.Errorf("deviation %s does not say what it breaks and does", d.Name)
		}
	}
	used := map[string]bool{}
	for _, c := range Checks() {
		if !known[c.Deviation] {
			t.Errorf("%s names deviation %q, which the initiator does not have", c.ID, c.Deviation)
		}
		used[c.Deviation] = true
	}
	for d := range known {
		if !used[d] {
			t.Logf("deviation %s is no check's yet", d)
		}
	}
}
