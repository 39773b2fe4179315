package target

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestStaticModelQuirk: under the static-model personality an NVM
// subsystem refuses CNTLID FFFFh at CNTLID (NVMe Base 2.2 6.3), gives any
// free controller for FFFEh and the very controller a specific CNTLID
// names, which is busy while associated; the reserved IDs are refused;
// discovery stays dynamic.
func TestStaticModelQuirk(t *testing.T) {
	cfg := testConfig()
	cfg.Quirks = []string{"static-model"}
	tg := startTarget(t, cfg)
	addr := tg.Addrs()[0]

	r := dial(t, addr, 0).connect(testNQN, 0, nvme.CNTLIDDynamic, 0)
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); !in || off != nvme.ConnectDataOffCNTLID {
		t.Fatalf("FFFFh refused at data %v offset %d, want the CNTLID", in, off)
	}
	mustOK(t, dial(t, addr, 0).connect(testNQN, 0, nvme.CNTLIDStatic, 0))

	const want = 77
	r = dial(t, addr, 0).connect(testNQN, 0, want, 0)
	mustOK(t, r)
	if got := uint16(r.DW0); got != want {
		t.Fatalf("Connect naming CNTLID %d got %d", want, got)
	}
	wantStatus(t, dial(t, addr, 0).connect(testNQN, 0, want, 0), nvme.StatusConnectControllerBusy)
	wantStatus(t, dial(t, addr, 0).connect(testNQN, 0, 0xFFF0, 0), nvme.StatusConnectInvalidParameters)

	mustOK(t, dial(t, addr, 0).connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0))
}
