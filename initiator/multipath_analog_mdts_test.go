package initiator

import (
	"context"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestMultipathANALogMDTSZero (review minor): with MDTS 0 (no limit, as
// nvmet reports) the host read the ANA log into a 4 KiB buffer, so a
// subsystem with about 1000 namespaces had a truncated log and no path
// connected. The host sizes the read from NANAGRPID and MNAN and reads
// the whole log. Our target cannot report MDTS 0 (it always has a limit),
// so a scripted controller does.
func TestMultipathANALogMDTSZero(t *testing.T) {
	const nsCount = 1024
	f := newFakeTarget(t)
	f.id.MDTS = 0
	f.id.CMIC |= nvme.CMICANA
	f.id.NANAGRPID, f.id.ANAGRPMAX = 1, 1
	f.id.NN, f.id.MNAN = nsCount, nsCount
	f.id.KAS = 1
	grp := nvme.ANAGroupDescriptor{ANAGRPID: 1, CHGCNT: 1, State: nvme.ANAOptimized}
	for i := range uint32(nsCount) {
		grp.NSIDs = append(grp.NSIDs, i+1)
	}
	log := nvme.ANALog{CHGCNT: 1, Groups: []nvme.ANAGroupDescriptor{grp}}
	f.logs = map[uint8][]byte{nvme.LogANA: log.Append(nil, false)}
	if n := len(f.logs[nvme.LogANA]); n <= 4096 {
		t.Fatalf("the ANA log is %d bytes: the test needs more than 4 KiB", n)
	}
	addr := f.listen(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := ConnectMultipath(ctx, []string{addr}, f.id.SUBNQN,
		MultipathOptions{Options: Options{NrIOQueues: 1, Timeout: 5 * time.Second, KATO: 2 * time.Second}})
	if err != nil {
		t.Fatalf("ANA log of %d namespaces with MDTS 0: %v", nsCount, err)
	}
	defer m.Close()
	if mts := m.Controller().MaxTransferSize(); mts != 0 {
		t.Fatalf("MaxTransferSize %d: the test needs 0 (no limit)", mts)
	}
	m.mu.Lock()
	got, last := len(m.nsGroup), m.nsGroup[nsCount]
	m.mu.Unlock()
	if got != nsCount || last != 1 {
		t.Fatalf("the host learnt %d namespaces (namespace %d in group %d), want %d in group 1", got, nsCount, last, nsCount)
	}
}
