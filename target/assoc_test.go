package target

import (
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
)

// TestKeepAliveInactiveBeforeEnable: NVMe Base 2.2 3.9.2 keeps the keep
// alive timer inactive until CC.EN and CSTS.RDY are 1, so an association
// silent past its KATO between Connect and enable is still there; once
// enabled, the timer runs and ends a silent association.
func TestKeepAliveInactiveBeforeEnable(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 3 s")
	}
	const kato = 500 * time.Millisecond
	tg := startTarget(t, testConfig())
	c := dial(t, tg.Addrs()[0], 0)
	mustOK(t, c.connect(testNQN, 0, nvme.CNTLIDDynamic, uint32(kato/time.Millisecond)))
	time.Sleep(3 * kato)
	mustOK(t, c.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil, false, nil))
	mustOK(t, c.exec(nvme.KeepAliveCmd(), nil, false, nil))
	// Active now: silence ends the association.
	c.expectClosed()
}

// TestKeepAliveStopsOnDisable: clearing CC.EN makes the timer inactive
// again (3.9.2), so a disabled controller's association outlives KATO.
func TestKeepAliveStopsOnDisable(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 2 s")
	}
	const kato = 500 * time.Millisecond
	tg := startTarget(t, testConfig())
	a := admin(t, tg.Addrs()[0], testNQN, uint32(kato/time.Millisecond))
	mustOK(t, a.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, 0), nil, false, nil))
	time.Sleep(3 * kato)
	mustOK(t, a.exec(nvme.PropertyGetCmd(0, nvme.PropCSTS, false), nil, false, nil))
}
