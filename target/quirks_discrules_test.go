package target

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

// discoveryAEC reads a discovery controller's Asynchronous Event
// Configuration (Get Features 0Bh, current value).
func discoveryAEC(t *testing.T, d *client) uint32 {
	t.Helper()
	r := d.exec(nvme.GetFeaturesCmd(nvme.FeatAsyncEventConfig, 0, nvme.SelCurrent), nil, false, nil)
	mustOK(t, r)
	return r.DW0
}

// TestDiscoveryKATOEnablesNotices: a non-zero KATO in a discovery
// Connect asks for an explicit persistent connection, and the Discovery
// controller "shall enable Asynchronous Discovery Log Event
// Notifications" (NVMe Base 2.2 3.1.3.3.1): AEC bit 31 is set without a
// Set Features. KATO 0 leaves it to the host. Under the
// discovery-kato-no-aen quirk the bit stays clear.
func TestDiscoveryKATOEnablesNotices(t *testing.T) {
	tg := startTarget(t, testConfig())
	disc := tg.Addrs()[1]
	if aec := discoveryAEC(t, admin(t, disc, nvme.DiscoveryNQN, 30000)); aec&nvme.AECDiscovery == 0 {
		t.Fatalf("KATO 30 s: AEC %#x, want bit 31 set", aec)
	}
	if aec := discoveryAEC(t, admin(t, disc, nvme.DiscoveryNQN, 0)); aec != 0 {
		t.Fatalf("KATO 0: AEC %#x, want 0", aec)
	}

	cfg := testConfig()
	cfg.Quirks = []string{"discovery-kato-no-aen"}
	tq := startTarget(t, cfg)
	if aec := discoveryAEC(t, admin(t, tq.Addrs()[1], nvme.DiscoveryNQN, 30000)); aec != 0 {
		t.Fatalf("discovery-kato-no-aen, KATO 30 s: AEC %#x, want 0", aec)
	}
}

// TestDiscoveryNonPersistentRefusesKATO: a Discovery controller without
// explicit persistent connections has no asynchronous events, so a
// non-zero KATO in its Connect gets Connect Invalid Parameters at KATO
// (NVMe Base 2.2 3.1.3.3); KATO 0 is accepted.
func TestDiscoveryNonPersistentRefusesKATO(t *testing.T) {
	cfg := testConfig()
	cfg.Quirks = []string{"discovery-non-persistent"}
	tg := startTarget(t, cfg)
	disc := tg.Addrs()[1]
	r := dial(t, disc, 0).connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 30000)
	wantStatus(t, r, nvme.StatusConnectInvalidParameters)
	if in, off := nvme.DecodeConnectInvalidParam(r.DW0); in || off != nvme.ConnectOffKATO {
		t.Fatalf("refused at data %v offset %d, want the KATO field", in, off)
	}
	mustOK(t, dial(t, disc, 0).connect(nvme.DiscoveryNQN, 0, nvme.CNTLIDDynamic, 0))
}
