package hostconform

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/suites"
)

// TestSensitivity: every host check fails against our own initiator with
// the deviation it exists for (TestSelfPassesAll shows each passes with
// none), so no check passes a host whatever it does.
func TestSensitivity(t *testing.T) {
	// All at once, not as parallel subtests: most of the time is a
	// deviating host not closing within the bound, and -parallel would
	// let only GOMAXPROCS of those wait at a time.
	type outcome struct {
		res suites.Result
		err error
	}
	cs := Checks()
	out := make([]outcome, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg, h := selfConfig(c.Deviation)
			defer h.Close()
			cfg.CloseWait = 5 * time.Second
			sum, err := Run(context.Background(), cfg, nil, RunOptions{Only: []string{c.ID}})
			if err == nil && len(sum.Results) != 1 {
				err = fmt.Errorf("%d results", len(sum.Results))
			}
			if err == nil {
				out[i].res = sum.Results[0]
			}
			out[i].err = err
		}()
	}
	wg.Wait()
	for i, c := range cs {
		r := out[i].res
		switch {
		case out[i].err != nil:
			t.Errorf("%s: %v", c.ID, out[i].err)
		case !r.Failed():
			t.Errorf("%s passed (state %s %s) against a host with deviation %s", c.ID, r.State, r.Message, c.Deviation)
		case !strings.Contains(r.Message, "host did"):
			// It must fail on its verdict (T.Conform), not on something
			// the deviation broke on the way.
			t.Errorf("%s failed with deviation %s, but not on its verdict: %s", c.ID, c.Deviation, r.Message)
		default:
			t.Logf("%s with %s: %s", c.ID, c.Deviation, r.Message)
		}
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
