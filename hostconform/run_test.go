package hostconform

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/fixtures/wireshark"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/suites"
)

// selfConfig is a run against our own initiator with deviations devs.
func selfConfig(devs ...string) (Config, *SelfHost) {
	h := &SelfHost{Options: initiator.Options{Deviations: devs, Timeout: 10 * time.Second, KATO: 5 * time.Second}}
	return Config{Listen: "127.0.0.1:0", HostNQN: "nqn.2014-08.io.nvmftest:host-under-test", Control: h,
		CloseWait: 10 * time.Second, CheckTimeout: time.Minute}, h
}

// TestSelfPassesAll: our own initiator, with no deviation and no profile,
// passes every host check (none skipped: it can do every verb they use).
func TestSelfPassesAll(t *testing.T) {
	cfg, h := selfConfig()
	defer h.Close()
	var out bytes.Buffer
	dir := t.TempDir()
	sum, err := Run(context.Background(), cfg, nil, RunOptions{Out: &out, ReportDir: dir, Traces: suites.TracesAll})
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
	// The traces of checks whose traffic is all legal decode cleanly,
	// the check's ID on the first packet. (Not HOST-IC-003's: Wireshark's
	// dissector takes a capsule's data to start after the header, not at
	// PDO, and calls CPDA padding "trailing stray characters".)
	if !wireshark.Usable(t) {
		return
	}
	_, portStr, _ := net.SplitHostPort(sum.Target[strings.LastIndexByte(sum.Target, ' ')+1:])
	port, _ := strconv.Atoi(portStr)
	for _, id := range []string{"HOST-CONN-001", "HOST-DATA-002", "HOST-DG-001", "HOST-DATA-005"} {
		p := filepath.Join(dir, "traces", id+".pcapng")
		res, err := wireshark.Check(p, port)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Clean() || res.PDUs == 0 {
			t.Errorf("%s: tshark: %v", id, res)
		}
		if len(res.Comments) == 0 || !strings.HasPrefix(res.Comments[0], id+": ") {
			t.Errorf("%s: the first packet comment is not the check's ID: %q", id, res.Comments)
		}
	}
}
