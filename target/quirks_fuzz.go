package target

import (
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fuzzQuirks are the quirks that prove `nvmftest fuzz` finds what it is
// for (fuzz/sensitivity_test.go): a target that dies on one malformed
// PDU. One field each, embedded in quirkSet.
type fuzzQuirks struct {
	connectPDOInHeaderDies bool
}

// fuzzQuirkTable lists them, in the format of quirkTable.
var fuzzQuirkTable = []Quirk{
	{Name: "connect-pdo-in-header-dies", Kind: QuirkDeviation,
		Does: "stops accepting connections on every port, and drops those it has, when a Connect CapsuleCmd with data has a PDO inside its own header, as SPDK v26.05's nvmf_tgt crashes on one (NVMe/TCP 1.0 3.6.2.1, 3.5.1: PDO below the header is a fatal error of that connection only)",
		set:  func(s *quirkSet) { s.connectPDOInHeaderDies = true }},
}

// diesOn reports whether the connect-pdo-in-header-dies quirk takes the
// target down over fe: a PDO error on a Connect capsule whose PDO points
// inside the capsule's 72-byte header.
func (t *Target) diesOn(fe *tcp.FatalError) bool {
	h := fe.Header
	return t.quirks.connectPDOInHeaderDies && fe.FES == tcp.FESInvalidHeaderField && fe.FEI == 3 &&
		len(h) >= tcp.HLenCapsuleCmd && tcp.PDUType(h[0]) == tcp.TypeCapsuleCmd &&
		int(h[3]) < tcp.HLenCapsuleCmd && h[8] == nvme.AdminFabrics && h[12] == nvme.FabricsConnect
}

// die takes every port down, as a crashed process would leave them; the
// ports come back with PortUp.
func (t *Target) die() {
	t.mu.Lock()
	ids := make([]uint16, 0, len(t.ports))
	for _, p := range t.ports {
		ids = append(ids, p.cfg.PortID)
	}
	t.mu.Unlock()
	t.log.Error("quirk connect-pdo-in-header-dies: the target stops listening")
	for _, id := range ids {
		_ = t.PortDown(id)
	}
}
