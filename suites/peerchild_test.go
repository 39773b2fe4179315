package suites

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// The fake-peer tests (TCP-DATA-001's SUCCESS targets, the fatal-error,
// fabrics and discovery peers) run each case in a process of its own,
// since suites.Run runs once per process: the test re-runs its own binary
// with an environment variable naming the case, the child runs the checks
// against that case's peer and prints one line per result, and the parent
// reads them back.

// printResults runs the checks filter selects against cfg and prints each
// result as "RESULT ID<tab>VERDICT<tab>message", for childResults.
func printResults(t *testing.T, cfg Config, filter string) {
	sum, err := Run(t, cfg, nil, RunOptions{LabelFilter: filter, Out: &strings.Builder{}, Quiet: true})
	if err != nil {
		t.Log(err)
	}
	for _, r := range sum.Results {
		os.Stdout.WriteString("\nRESULT " + r.ID + "\t" + verdict(r) + "\t" + oneLine(r.Message))
	}
	os.Stdout.WriteString("\nEND\n")
}

// childResult is one check's line from a child: its verdict (PASS, FAIL,
// SKIP, FINDING, NOT RUN) and message.
type childResult struct{ verdict, message string }

// childResults runs the test function test in a child process with
// env=value and returns what printResults printed there, by check ID,
// and the child's whole output for failure messages.
func childResults(t *testing.T, test, env, value string) (map[string]childResult, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"="+value)
	b, _ := cmd.CombinedOutput()
	out := string(b)
	got := map[string]childResult{}
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "RESULT "); ok {
			f := strings.SplitN(rest, "\t", 3)
			if len(f) == 3 {
				got[f[0]] = childResult{f[1], f[2]}
			}
		}
	}
	return got, out
}

// judged returns, from a child's results, the checks that ran to a
// verdict (passed, failed or skipped: not "not run") and, sorted, those
// that failed.
func judged(got map[string]childResult) (ran int, failed []string) {
	for id, r := range got {
		switch r.verdict {
		case "FAIL":
			failed = append(failed, id)
		case "PASS", "SKIP":
		default:
			continue
		}
		ran++
	}
	sort.Strings(failed)
	return ran, failed
}

// nextCapsule reads a fake controller's connection up to the next command
// capsule and returns its SQE and in-capsule data (other PDUs are read
// and dropped); ok is false once the connection ends.
func nextCapsule(c *tcp.Conn) (sqe nvme.SQE, data []byte, ok bool) {
	for {
		p, err := c.Next()
		if err != nil {
			return nvme.SQE{}, nil, false
		}
		data = make([]byte, c.DataLen())
		if len(data) > 0 {
			if err := c.ReadData(data); err != nil {
				return nvme.SQE{}, nil, false
			}
		}
		if cmd, isCmd := p.(*tcp.CapsuleCmd); isCmd {
			return cmd.SQE, data, true
		}
	}
}

// respondTo sends a fake controller's Response Capsule.
func respondTo(c *tcp.Conn, cid uint16, st nvme.Status, dw0, dw1 uint32) {
	_ = c.Send(&tcp.CapsuleResp{CQE: nvme.CQE{CID: cid, DW0: dw0, DW1: dw1, SQHD: 1, Status: st}}, nil)
}
