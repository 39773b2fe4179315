package target

import (
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestFeaturesSelectDefault: the controller claims ONCS bit 4 (Save and
// Select) and answers Get Features Select 001b (Default) and 010b (Saved:
// nothing is saveable, so the default) with the default value, not the
// current one: for Keep Alive Timer the NVMe/TCP default of 120,000 ms
// rounded up to KAS (NVMe Base 2.1 5.1.25.1.8), whatever the Connect and
// Set Features asked; Set Features with Save fails, Feature Identifier
// Not Saveable.
func TestFeaturesSelectDefault(t *testing.T) {
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, 1500)
	b := make([]byte, 4096)
	mustOK(t, a.exec(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil, false, b))
	var id nvme.IdentifyController
	if err := id.Decode(b); err != nil {
		t.Fatal(err)
	}
	if id.ONCS&nvme.ONCSSaveSelect == 0 {
		t.Fatalf("ONCS %#x: bit 4 (Save and Select) clear", id.ONCS)
	}
	mustOK(t, a.exec(nvme.SetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, 5000, false), nil, false, nil))
	for sel, want := range map[uint8]uint32{nvme.SelCurrent: 5000, nvme.SelDefault: 120000, nvme.SelSaved: 120000} {
		r := a.exec(nvme.GetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, sel), nil, false, nil)
		mustOK(t, r)
		if r.DW0 != want {
			t.Errorf("Get Features Keep Alive Timer, Select %d: %d ms, want %d", sel, r.DW0, want)
		}
	}
	wantStatus(t, a.exec(nvme.SetFeaturesCmd(nvme.FeatKeepAliveTimer, 0, 5000, true), nil, false, nil), nvme.StatusFeatureNotSaveable)
}
