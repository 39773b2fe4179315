package initiator_test

import (
	"testing"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/target"
)

// A negative Options.Timeout means "no command timeout". The contexts the
// host derives for its own commands (the ANA log read when a path
// connects, Set Features Asynchronous Event Configuration) used to be
// context.WithTimeout(parent, negative): already expired, so a multipath
// connect always failed and AsyncEvents could abandon a command and kill
// the admin queue.
func TestNegativeTimeoutMeansNone(t *testing.T) {
	addr := startTarget(t)
	ctx := ctx(t)
	opts := initiator.Options{NrIOQueues: 1, Timeout: -1}

	m, err := initiator.ConnectMultipath(ctx, []string{addr}, target.DefaultSubsystemNQN,
		initiator.MultipathOptions{Options: opts})
	if err != nil {
		t.Fatalf("ConnectMultipath with Timeout -1: %v", err)
	}
	defer m.Close()
	buf := make([]byte, 512)
	if err := m.Read(ctx, 1, 0, 1, buf); err != nil {
		t.Fatalf("multipath read: %v", err)
	}

	for i := range 20 { // the AsyncEvents failure was a select race
		c, err := initiator.Connect(ctx, addr, target.DefaultSubsystemNQN, opts)
		if err != nil {
			t.Fatal(err)
		}
		c.AsyncEvents()
		if _, err := c.Identify(ctx); err != nil {
			t.Fatalf("round %d: Identify after AsyncEvents: %v", i, err)
		}
		if err := c.Admin().Err(); err != nil {
			t.Fatalf("round %d: admin queue died after AsyncEvents: %v", i, err)
		}
		c.Close()
	}
}
