package main

import (
	"testing"

	"github.com/spf13/pflag"
)

// TestK8sFlagNames: every flag addK8sBenchFlags adds is in k8sFlagNames
// (so none is passed to the shards), and nothing else is.
func TestK8sFlagNames(t *testing.T) {
	c := newBenchCmd()
	var f k8sBenchFlags
	probe := newBenchCmd()
	probe.ResetFlags()
	addK8sBenchFlags(probe, &f)
	n := 0
	probe.Flags().VisitAll(func(fl *pflag.Flag) {
		n++
		if !k8sFlagNames[fl.Name] {
			t.Errorf("--%s steers the Job but would be passed to the shards", fl.Name)
		}
		if c.Flags().Lookup(fl.Name) == nil {
			t.Errorf("--%s is not a bench flag", fl.Name)
		}
	})
	if n != len(k8sFlagNames) {
		t.Errorf("k8sFlagNames has %d names, addK8sBenchFlags adds %d", len(k8sFlagNames), n)
	}
}
