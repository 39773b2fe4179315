package hostconform

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/initiator"
)

// TestAttended: without a host control, the run prints the nvme connect
// and disconnect lines and waits for the host; a person (here our own
// initiator, doing what each printed line says) gets the checks that
// need only a connect judged, and those that need I/O skipped, saying
// so.
func TestAttended(t *testing.T) {
	pr, pw := io.Pipe()
	host := &SelfHost{Options: initiator.Options{Timeout: 10 * time.Second}}
	defer host.Close()
	go func() {
		// The person at the host: runs each command the run prints.
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || f[0] != "nvme" {
				continue
			}
			args := map[string]string{}
			for i := 2; i+1 < len(f); i++ {
				switch f[i] {
				case "-a":
					args["addr"] = f[i+1]
				case "-s":
					args["port"] = f[i+1]
				case "-n":
					args["nqn"] = f[i+1]
				case "-q":
					args["hostnqn"] = f[i+1]
				}
			}
			_ = host.Do(context.Background(), control.Action{Verb: f[1], Args: args})
		}
	}()
	cfg := Config{Listen: "127.0.0.1:0", Control: &Attended{Out: pw}, CloseWait: 3 * time.Second, CheckTimeout: time.Minute}
	sum, err := Run(context.Background(), cfg, nil, RunOptions{Only: []string{"HOST-CONN-002", "HOST-CONN-005", "HOST-DATA-005"}})
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"HOST-CONN-002": "passed", "HOST-CONN-005": "passed", "HOST-DATA-005": "skipped"}
	for _, r := range sum.Results {
		if r.State != want[r.ID] {
			t.Errorf("%s: %s (%s), want %s", r.ID, r.State, r.Message, want[r.ID])
		}
		if r.State == "skipped" && r.Needs != "a --host-control that can io" {
			t.Errorf("%s skipped needing %q", r.ID, r.Needs)
		}
	}
}
