package target

import (
	"bytes"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestDSMAllOrNothing: a Dataset Management deallocate whose last range is
// out of range fails with LBA Out of Range and deallocates nothing (review
// #18: it used to deallocate the ranges before the bad one).
func TestDSMAllOrNothing(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	q := ioQueue(t, tg.Addrs()[0], a.cntlid, 1, 0)
	data := bytes.Repeat([]byte{0x5A}, 4096)
	w := nvme.WriteCmd(1, 0, 8)
	nvme.SetInCapsule(&w, 4096)
	mustOK(t, q.exec(w, data, true, nil))

	const nlba = 2048 // namespace 1: 1 MiB of 512-byte blocks
	rng := make([]byte, 2*nvme.DSMRangeSize)
	(&nvme.DSMRange{NLB: 8, SLBA: 0}).Put(rng)
	(&nvme.DSMRange{NLB: 1, SLBA: nlba}).Put(rng[nvme.DSMRangeSize:])
	wantStatus(t, q.exec(nvme.DSMCmd(1, 2, true), rng, true, nil), nvme.StatusLBAOutOfRange)

	r := nvme.ReadCmd(1, 0, 8)
	nvme.SetDataLength(&r, 4096)
	got := make([]byte, 4096)
	mustOK(t, q.exec(r, nil, false, got))
	if !bytes.Equal(got, data) {
		t.Fatalf("blocks 0-7 read %#x... after a failed deallocate, want 0x5a", got[:4])
	}
}
