package cpuset

import (
	"math"
	"testing"
	"time"
)

func TestBusySince(t *testing.T) {
	a := parseCPUTimes([]byte("cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\nintr 1 2 3\n"))
	// CPU 0: 20 more jiffies, all user (a poller); CPU 1: 20 more, 2 busy.
	b := parseCPUTimes([]byte("cpu  42 0 10 98 0 0 0 0 0 0\ncpu0 25 0 5 40 0 0 0 0 0 0\ncpu1 5 0 7 58 0 0 0 0 0 0\n"))
	got := busySince(a, b)
	if math.Abs(got[0]-1) > 1e-9 || math.Abs(got[1]-0.1) > 1e-9 || len(got) != 2 {
		t.Errorf("busySince = %v, want CPU 0 at 1.0 and CPU 1 at 0.1", got)
	}
	if _, err := SampleBusy(20 * time.Millisecond); err != nil {
		t.Errorf("SampleBusy on this machine: %v", err)
	}
}
