package hostconform

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/suites"
)

// selfConfig is a run against our own initiator with deviations devs.
func selfConfig(devs ...string) (Config, *SelfHost) {
	h := &SelfHost{Options: initiator.Options{Deviations: devs, Timeout: 10 * time.Second, KATO: 5 * time.Second}}
	return Config{Listen: "127.0.0.1:0", HostNQN: "nqn.2014-08.io.nvmftest:host-under-test", Control: h,
		CloseWait: 3 * time.Second, CheckTimeout: 45 * time.Second}, h
}

// TestSelfPassesAll: our own initiator, with no deviation and no profile,
// passes every host check (none skipped: it can do every verb they use).
func TestSelfPassesAll(t *testing.T) {
	cfg, h := selfConfig()
	defer h.Close()
	var out bytes.Buffer
	sum, err := Run(context.Background(), cfg, nil, RunOptions{Out: &out, ReportDir: t.TempDir(), Traces: suites.TracesAll})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Results {
		if r.State != "passed" || len(r.Findings) > 0 {
			t.Errorf("%s: %s: %s", r.ID, r.State, r.Message)
		}
	}
	if len(sum.Results) != len(Checks()) {
		t.Errorf("%d results for %d checks", len(sum.Results), len(Checks()))
	}
	if t.Failed() || testing.Verbose() {
		t.Log(out.String())
	}
	if !strings.Contains(out.String(), "CONFORMANT") {
		t.Errorf("no verdict in the output:\n%s", out.String())
	}
}
