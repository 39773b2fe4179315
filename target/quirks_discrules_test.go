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

// TestDiscoveryDisconnectRefused: a Discovery controller "shall not
// support the Disconnect command" and a Disconnect on an Admin Queue gets
// Invalid Queue Type (NVMe Base 2.2 3.1.3.3, 6.4); the association goes
// on. Under discovery-disconnect-accepted it succeeds.
func TestDiscoveryDisconnectRefused(t *testing.T) {
	tg := startTarget(t, testConfig())
	d := admin(t, tg.Addrs()[1], nvme.DiscoveryNQN, 0)
	wantStatus(t, d.exec(nvme.DisconnectCmd(0), nil, false, nil), nvme.StatusInvalidQueueType)
	mustOK(t, d.exec(nvme.KeepAliveCmd(), nil, false, nil))

	cfg := testConfig()
	cfg.Quirks = []string{"discovery-disconnect-accepted"}
	tq := startTarget(t, cfg)
	mustOK(t, admin(t, tq.Addrs()[1], nvme.DiscoveryNQN, 0).exec(nvme.DisconnectCmd(0), nil, false, nil))
}

// TestPropertyReservedSize: a Property Get or Set whose size (PRS, PUS)
// is reserved (010b to 111b) fails with Invalid Field in Command at
// ATTRIB (NVMe Base 2.2 6.5, 6.6, 1.4.1.6); 4 and 8 bytes still work.
// Under property-reserved-size-accepted a reserved size reads 4 bytes.
func TestPropertyReservedSize(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 0)
	for _, attrib := range []uint32{2, 3, 7} {
		get := nvme.PropertyGetCmd(0, nvme.PropVS, false)
		get.CDW10 = attrib
		wantStatus(t, a.exec(get, nil, false, nil), nvme.StatusInvalidField)
		set := nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable)
		set.CDW10 = attrib
		wantStatus(t, a.exec(set, nil, false, nil), nvme.StatusInvalidField)
	}
	mustOK(t, a.exec(nvme.PropertyGetCmd(0, nvme.PropVS, false), nil, false, nil))
	mustOK(t, a.exec(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil, false, nil))

	cfg := testConfig()
	cfg.Quirks = []string{"property-reserved-size-accepted"}
	tq := startTarget(t, cfg)
	get := nvme.PropertyGetCmd(0, nvme.PropVS, false)
	get.CDW10 = 2
	mustOK(t, admin(t, tq.Addrs()[0], testNQN, 0).exec(get, nil, false, nil))
}
