package nvme

import "testing"

// SPDK pads TRSVCID and TRADDR with spaces, Linux with NULs: a host dials
// the address without the padding either way.
func TestDiscoveryEntryAddressPadding(t *testing.T) {
	for _, pad := range []byte{0, ' '} {
		b := make([]byte, DiscoveryLogEntrySize)
		copy(b[32:64], "4420")
		copy(b[512:768], "127.0.0.1")
		for i := 32 + 4; i < 64; i++ {
			b[i] = pad
		}
		for i := 512 + 9; i < 768; i++ {
			b[i] = pad
		}
		var e DiscoveryLogEntry
		if err := e.Decode(b); err != nil {
			t.Fatal(err)
		}
		if e.TRSVCID != "4420" || e.TRADDR != "127.0.0.1" {
			t.Errorf("padding %q: TRSVCID %q TRADDR %q, want 4420 and 127.0.0.1", pad, e.TRSVCID, e.TRADDR)
		}
	}
}
