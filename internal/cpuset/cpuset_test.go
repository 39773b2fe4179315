package cpuset

import (
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string][]int{
		"0": {0}, "0,2-3": {0, 2, 3}, "3,1,1-2": {1, 2, 3}, "0x5": {0, 2}, "0X3": {0, 1}, " 1 , 4-5 ": {1, 4, 5},
	} {
		got, err := Parse(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err == nil {
			if back, _ := Parse(Format(got)); !reflect.DeepEqual(back, got) {
				t.Errorf("Format(%v) = %q does not parse back", got, Format(got))
			}
		}
	}
	for _, bad := range []string{"", "x", "1-", "3-1", "-1", "0x", "0x0", "0xZZ", "1,,2"} {
		if got, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", bad, got)
		}
	}
	if got := Format([]int{0, 1, 2, 5, 7, 8}); got != "0-2,5,7-8" {
		t.Errorf("Format = %q", got)
	}
}

// Pin changes the whole process, so it runs in a child.
func TestPin(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pinning is Linux only")
	}
	if os.Getenv("CPUSET_CHILD") == "1" {
		if err := Pin([]int{0}); err != nil {
			t.Fatal(err)
		}
		if runtime.GOMAXPROCS(0) != 1 {
			t.Fatalf("GOMAXPROCS %d after pinning to one CPU", runtime.GOMAXPROCS(0))
		}
		st, _ := os.ReadFile("/proc/self/status")
		for _, l := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(l, "Cpus_allowed_list:") && strings.TrimSpace(strings.TrimPrefix(l, "Cpus_allowed_list:")) != "0" {
				t.Fatalf("after Pin([0]): %s", l)
			}
		}
		if err := Pin([]int{4095}); err == nil || !strings.Contains(err.Error(), "not available") {
			t.Fatalf("Pin to a CPU that is not there: %v", err)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestPin$", "-test.v")
	cmd.Env = append(os.Environ(), "CPUSET_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestAvoidBusy(t *testing.T) {
	all := []int{0, 1, 2, 3}
	for _, tc := range []struct {
		b    Busy
		want []int
	}{
		{Busy{0: 0.05, 1: 1.0, 2: 0.1, 3: 0.3}, []int{0, 2, 3}}, // a poller on CPU 1
		{Busy{0: 0.6, 1: 0.7, 2: 0.1, 3: 0.3}, nil},             // busy, nobody pinned at 100%
		{Busy{0: 1, 1: 1, 2: 0.95, 3: 0.99}, nil},               // nothing free: stay
		{Busy{0: 0.95, 1: 0.7, 2: 0.6, 3: 0.55}, nil},           // nothing below half: stay
		{Busy{}, nil},
	} {
		if got := AvoidBusy(tc.b, all); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("AvoidBusy(%v) = %v, want %v", tc.b, got, tc.want)
		}
	}
}
