package suites

import (
	"testing"
	"time"
)

// TestExpectedKATO holds the KATO judgement of ADM-FEAT-002/003 to NVMe
// Base 2.1 5.1.25.1.8 (rounded up to the KAS granularity) and Base 2.2
// 3.9.1 (raised to the implementation's minimum), and proves it fails
// the deviations: a KATO kept exact under a coarse KAS, rounded down, or
// off the granularity.
func TestExpectedKATO(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		got, req, g time.Duration
		ok          bool
	}{
		{5000 * ms, 5000 * ms, 100 * ms, true},    // KAS 1: no rounding
		{10000 * ms, 5000 * ms, 10000 * ms, true}, // SPDK: KAS 100, 10 s
		{10000 * ms, 6000 * ms, 10000 * ms, true},
		{30000 * ms, 30000 * ms, 10000 * ms, true},
		{6000 * ms, 5000 * ms, 1000 * ms, true},   // a 6 s minimum on a 1 s granularity
		{5000 * ms, 5000 * ms, 10000 * ms, false}, // kept exact under KAS 100
		{1000 * ms, 5000 * ms, 100 * ms, false},   // lowered
		{5050 * ms, 5000 * ms, 100 * ms, false},   // off the granularity
		{0, 5000 * ms, 100 * ms, false},           // disabled
	} {
		if _, ok := expectedKATO(tc.got, tc.req, tc.g); ok != tc.ok {
			t.Errorf("KATO %v for %v with granularity %v: allowed %v, want %v", tc.got, tc.req, tc.g, ok, tc.ok)
		}
	}
	if got := roundUpKATO(1*time.Second, 10*time.Second); got != 10*time.Second {
		t.Errorf("1 s rounded up to 10 s granularity: %v", got)
	}
}
