package initiator

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestANALogNeeds: the length of an ANA log judged from any prefix of it
// never exceeds the real length and reaches it once every descriptor
// header is in the prefix, so a re-read at that size (or double the last)
// always gets further.
func TestANALogNeeds(t *testing.T) {
	l := nvme.ANALog{CHGCNT: 9, Groups: []nvme.ANAGroupDescriptor{
		{ANAGRPID: 1, State: nvme.ANAOptimized, NSIDs: []uint32{1, 2, 3}},
		{ANAGRPID: 2, State: nvme.ANAInaccessible},
		{ANAGRPID: 3, State: nvme.ANANonOptimized, NSIDs: make([]uint32, 100)},
	}}
	b := l.Append(nil, false)
	full := uint64(len(b))
	lastHdr := nvme.ANALogHeaderSize + 2*nvme.ANAGroupDescriptorSize + 4*3 // group 3's descriptor starts here
	for n := 0; n <= len(b); n++ {
		got := anaLogNeeds(b[:n])
		if got > full {
			t.Fatalf("prefix %d: needs %d, more than the log's %d", n, got, full)
		}
		if n >= nvme.ANALogHeaderSize && got <= uint64(n) && n < len(b) {
			t.Fatalf("prefix %d of %d: needs %d, no more than what was read", n, len(b), got)
		}
		if n >= lastHdr+nvme.ANAGroupDescriptorSize && got != full {
			t.Fatalf("prefix %d: needs %d, want %d once every descriptor header is in", n, got, full)
		}
	}
}
