package suites

// Property and controller-state rules of issue 19 (spec coverage):
// reserved property bits and offsets, CRTO, the CAP fields fixed for
// Fabrics I/O and Discovery controllers, CC on a controller without I/O
// queues, where a 4-byte property value sits in the response, the
// controller model all controllers of a subsystem share, what a
// Controller Reset keeps (completed writes) and stops (commands), SHST
// across resets and re-enabling, an unaligned Get Log Page offset, PSDT
// 00b on a Fabrics command that moves data, and Property Set on an I/O
// queue.

import (
	"bytes"
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Sections the checks below cite.
const (
	secReservedKW  = "NVMe Base 2.2 1.4.1.6"
	secPropMapMsg  = "NVMe Base 2.2 3.1.4 Fig. 33, Fig. 35"
	secPropGetResp = "NVMe Base 2.2 6.5 Fig. 553"
	secFabricsCDW0 = "NVMe Base 2.2 4.1.2 Fig. 95"
	secSubsysModel = "NVMe Base 2.2 3.1"
)

// Reserved bits of the properties (NVMe Base 2.2 Figs. 36, 41, 42): CAP
// 63:62, CSS bits 5:1 (CAP 42:38) and 23:19; CC 31:25 and 03:01; CSTS
// 31:07.
const (
	capReservedBits  = uint64(3)<<62 | uint64(0x1F)<<38 | uint64(0x1F)<<19
	ccReservedBits   = uint32(0x7F)<<25 | uint32(7)<<1
	cstsReservedBits = ^uint32(0x7F)
)

// Offsets the checks read beyond those nvme names: CRTO (Fig. 33) and the
// start of the range reserved for Fabrics (Fig. 35).
const (
	propCRTO   = 0x68
	propFabric = 0x1000
)

// cstsST is CSTS.ST (bit 6): SHST reports an NVM Subsystem Shutdown.
const cstsST = 1 << 6

// propsLBA is where the controller-reset checks write (clear of the
// blocks the association checks use, assocLBA on).
const propsLBA = 200

// msgReservedProps are the offsets Fig. 33 reserves for message-based
// controllers (notes 2 and 3) and samples of 1000h-12FFh, reserved for
// Fabrics (Fig. 35), each with its width in the memory-based map.
var msgReservedProps = []struct {
	name  string
	off   uint32
	size8 bool
}{
	{"INTMS", 0x0C, false}, {"INTMC", 0x10, false}, {"18h", 0x18, false},
	{"AQA", 0x24, false}, {"ASQ", 0x28, true}, {"ACQ", 0x30, true},
	{"CMBLOC", 0x38, false}, {"CMBSZ", 0x3C, false}, {"BPINFO", 0x40, false},
	{"BPRSEL", 0x44, false}, {"BPMBL", 0x48, true}, {"CMBMSC", 0x50, true},
	{"CMBSTS", 0x58, false}, {"CMBEBS", 0x5C, false}, {"CMBSWTP", 0x60, false},
	{"PMRCAP", 0xE00, false}, {"PMRCTL", 0xE04, false}, {"PMRSTS", 0xE08, false},
	{"PMREBS", 0xE0C, false}, {"PMRSWTP", 0xE10, false}, {"PMRMSCL", 0xE14, false},
	{"PMRMSCU", 0xE18, false},
	{"1000h", propFabric, false}, {"1004h", propFabric + 4, false},
	{"1100h", propFabric + 0x100, false}, {"12FCh", propFabric + 0x2FC, false},
}

// rawDiscovery is a raw admin queue connected to the discovery controller
// (well-known NQN, KATO 0), not enabled.
func (s *Spec) rawDiscovery(ctx context.Context) *initiator.Raw {
	GinkgoHelper()
	r := s.DialDiscovery(ctx)
	_, err := r.Initialize(plainIC)
	s.skipIfICRespRefused(err)
	s.Must(err, "connection initialization")
	_, err = s.connectRaw(r, nvme.DiscoveryNQN, 0, cntlidAnyDynamic, initiator.AdminQueueSize-1, 0, 0)
	s.skipIfDiscoveryConnectRefused(err)
	s.Must(err, "discovery Connect")
	return r
}

// writeInCapsule writes data (one block) at lba on io's I/O queue, the
// data in the capsule; it skips when the controller takes less in-capsule
// data than a block.
func (s *Spec) writeInCapsule(io *ioSetup, lba uint64, data []byte) {
	GinkgoHelper()
	if io.inCapsule() < io.bs {
		s.Lacks(fmt.Sprintf("in-capsule data of one %d-byte block in I/O commands (IOCCSZ %d)", io.bs, io.id.IOCCSZ))
	}
	w := nvme.WriteCmd(io.nsid, lba, 1)
	nvme.SetInCapsule(&w, io.bs)
	_, _, err := io.io.Command(w, data)
	s.Must(err, fmt.Sprintf("Write of LBA %d", lba))
}

// readOnNewAssociation reads one block at lba through a new association.
func (s *Spec) readOnNewAssociation(ctx context.Context, lba uint64) []byte {
	GinkgoHelper()
	return s.readBlock(s.SetupIO(ctx, plainIC), lba)
}

// readBlock reads one block at lba on v's I/O queue.
func (s *Spec) readBlock(v *ioSetup, lba uint64) []byte {
	GinkgoHelper()
	rd := nvme.ReadCmd(v.nsid, lba, 1)
	nvme.SetDataLength(&rd, v.bs)
	_, got, err := v.io.Command(rd, nil)
	s.mustProbeRead(err, fmt.Sprintf("Read of LBA %d", lba))
	return got
}

// resetController clears CC.EN (keeping the entry sizes, SHN 00b) and
// waits for CSTS.RDY to clear; a controller whose RDY stays set is
// FAB-PROP-024's finding, so the check skips.
func (s *Spec) resetController(ctx context.Context, r *initiator.Raw, cp nvme.CAP) {
	GinkgoHelper()
	s.Must(propSet(r, nvme.PropCC, false, ccEnable&^nvme.CCEnable), "Property Set CC.EN=0")
	_, ok, err := waitCSTS(ctx, r, nvme.CSTSReady, 0, readyTimeout(cp))
	s.Must(err, "Property Get CSTS")
	if !ok {
		Skip(fmt.Sprintf("%s: CSTS.RDY did not clear within CAP.TO after CC.EN=0 (FAB-PROP-024 judges that)", s.Req.ID))
	}
}

// shutdownComplete sets CC to cc (a shutdown notification) and waits for
// CSTS.SHST 10b; it returns whether it came (FAB-PROP-022 judges that)
// and the last CSTS.
func shutdownComplete(ctx context.Context, s *Spec, r *initiator.Raw, cp nvme.CAP, cc uint32) (uint32, bool) {
	GinkgoHelper()
	s.Must(propSet(r, nvme.PropCC, false, uint64(cc)), fmt.Sprintf("Property Set CC %#x", cc))
	csts, ok, err := waitCSTS(ctx, r, nvme.CSTSShstMask, nvme.CSTSShstCmplt, max(readyTimeout(cp), 5*time.Second))
	s.Must(err, "Property Get CSTS")
	return csts, ok
}

// enableWatchingSHST sets CC to cc (EN 1) and polls CSTS until RDY is
// set or CAP.TO passes; it returns a departure ("RDY 1 with SHST ..."),
// "" if every CSTS read with RDY set had SHST 00b, and whether RDY came.
func enableWatchingSHST(ctx context.Context, s *Spec, r *initiator.Raw, cp nvme.CAP, cc uint32) (string, bool) {
	GinkgoHelper()
	s.Must(propSet(r, nvme.PropCC, false, uint64(cc)), fmt.Sprintf("Property Set CC %#x", cc))
	deadline := time.Now().Add(readyTimeout(cp))
	for {
		v, err := propGet(r, nvme.PropCSTS, false)
		s.Must(err, "Property Get CSTS")
		csts := uint32(v)
		if csts&nvme.CSTSReady != 0 {
			if sh := csts & nvme.CSTSShstMask; sh != 0 {
				return fmt.Sprintf("RDY 1 with SHST %02bb", sh>>nvme.CSTSShstShift), true
			}
			return "", true
		}
		if csts&nvme.CSTSFatal != 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return "", false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var _ = Describe("Fabrics", Label("fabrics"), func() {
	Describe("property rules", Label("fabrics-property"), func() {
		Check(Requirement{ID: "FAB-PROP-027", Section: secProps + " Figs. 36, 41, 42", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.1.4-05"},
			Text:       "Hardware shall return '0' for all bits that are marked as reserved (3.1.4); reserved: CAP 63:62, CAP.CSS bits 5:1, CAP 23:19 (Fig. 36), CC 31:25 and 03:01 (Fig. 41), CSTS 31:07 (Fig. 42)",
			Title:      "the reserved bits of CAP, CC and CSTS read 0, on a new controller and once it is enabled"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			var bad []string
			read := func(when string) nvme.CAP {
				GinkgoHelper()
				v, err := propGet(r, nvme.PropCAP, true)
				s.mustProperty(err, nvme.PropCAP)
				if b := v & capReservedBits; b != 0 {
					bad = append(bad, fmt.Sprintf("CAP (%s) reserved bits %#x", when, b))
				}
				cc, err := propGet(r, nvme.PropCC, false)
				s.Must(err, "Property Get CC")
				if b := uint32(cc) & ccReservedBits; b != 0 {
					bad = append(bad, fmt.Sprintf("CC (%s) reserved bits %#x", when, b))
				}
				csts, err := propGet(r, nvme.PropCSTS, false)
				s.Must(err, "Property Get CSTS")
				if b := uint32(csts) & cstsReservedBits; b != 0 {
					bad = append(bad, fmt.Sprintf("CSTS (%s) reserved bits %#x", when, b))
				}
				return nvme.CAP(v)
			}
			cp := read("disabled")
			s.Must(propSet(r, nvme.PropCC, false, ccEnable), "Property Set CC.EN=1")
			s.waitReady(ctx, r, cp)
			read("enabled")
			s.ConformAll(bad, "reserved bits 0")
		})

		// Fig. 33 marks INTMS, INTMC, AQA, ASQ, ACQ (note 2) and the CMB,
		// BP and PMR properties (note 3) reserved for message-based
		// controllers, 18h and E1Ch on reserved for all, and Fig. 35
		// reserves 1000h-12FFh for Fabrics. A reserved property "returns
		// 0h when read" (3.1.4); 6.5 lets a controller call its offset
		// invalid instead. Either passes, per offset.
		Check(Requirement{ID: "FAB-PROP-028", Section: secPropMapMsg + "; " + secPropGet, Keyword: Indicative, Binds: Controller,
			Statements: []string{"B-F33-01"},
			Text:       "For message-based controllers this property is reserved (Fig. 33 notes 2, 3); 1000h, 300h: Reserved for Fabrics (Fig. 35); All reserved properties ... are read-only and return 0h when read (3.1.4); If an invalid property or invalid offset is specified, then a status code of Invalid Field in Command shall be returned (6.5)",
			Title:      "Property Gets of INTMS, INTMC, 18h, AQA, ASQ, ACQ, the CMB, BP and PMR properties and of 1000h, 1004h, 1100h and 12FCh each read 0 or fail with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			var bad []string
			for _, p := range msgReservedProps {
				v, err := propGet(r, p.off, p.size8)
				obs := Outcome(err)
				switch {
				case err == nil && v == 0, obs == stInvalidField:
				case err == nil:
					bad = append(bad, fmt.Sprintf("%s (%#x): %#x", p.name, p.off, v))
				default:
					bad = append(bad, fmt.Sprintf("%s (%#x): %s", p.name, p.off, obs))
				}
			}
			s.ConformAll(bad, "each 0 or Invalid Field in Command")
		})

		// CRTO came with Base 2.0; a controller reporting an earlier
		// version has no CRTO to read (its 68h is reserved).
		Check(Requirement{ID: "FAB-PROP-029", Section: secPropMapMsg + "; " + secPropGet, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-F33-01"},
			Text:       "68h, 4 bytes, CRTO: Controller Ready Timeouts: M for I/O and Administrative controllers (Fig. 33)",
			Title:      "an I/O controller reporting VS 2.0 or later answers a 4-byte Property Get of CRTO (68h)"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			vs, err := propGet(r, nvme.PropVS, false)
			s.mustProperty(err, nvme.PropVS)
			if uint32(vs) < nvme.MakeVersion(2, 0, 0) {
				s.Lacks("a version with CRTO: VS " + nvme.VersionString(uint32(vs)) + " predates Base 2.0")
			}
			v, err := propGet(r, propCRTO, false)
			s.Conform(Outcome(err), "success")
			cp, err := propGet(r, nvme.PropCAP, true)
			s.mustProperty(err, nvme.PropCAP)
			AddReportEntry("observed", fmt.Sprintf("%s: CRTO %#x (CRWMT %d, CRIMT %d), CAP.TO %d", s.Req.ID, uint32(v), uint16(v), uint16(v>>16), nvme.CAP(cp).TO()))
		})

		Check(Requirement{ID: "FAB-PROP-030", Section: secCAP + " Fig. 36", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CAP-01"},
			Text:       "DSTRD: For NVMe over Fabrics I/O controllers, this property shall be cleared to a fixed value of 0h",
			Title:      "CAP.DSTRD of the I/O controller is 0"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			v, err := propGet(r, nvme.PropCAP, true)
			s.mustProperty(err, nvme.PropCAP)
			s.Conform(fmt.Sprintf("DSTRD %d", nvme.CAP(v).DSTRD()), "DSTRD 0")
		})

		Check(Requirement{ID: "FAB-PROP-031", Section: secCAP + " Fig. 36", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CAP-04"},
			Text:       "MPSMAX: For Discovery controllers this field shall be cleared to 0h; MPSMIN: For Discovery controllers this shall be cleared to 0h; NSSRS: For Discovery controllers, this field shall be cleared to 0h; AMS: For Discovery controllers, this property shall be cleared to 0h",
			Title:      "the discovery controller's CAP has AMS 0, MPSMIN 0, MPSMAX 0 and NSSRS 0"}, func(ctx context.Context, s *Spec) {
			r := s.rawDiscovery(ctx)
			v, err := propGet(r, nvme.PropCAP, true)
			s.mustProperty(err, nvme.PropCAP)
			cp := nvme.CAP(v)
			s.Conform(fmt.Sprintf("AMS %d, MPSMIN %d, MPSMAX %d, NSSRS %v", cp.AMS(), cp.MPSMIN(), cp.MPSMAX(), cp.NSSRS()),
				"AMS 0, MPSMIN 0, MPSMAX 0, NSSRS false")
		})

		Check(Requirement{ID: "FAB-PROP-032", Section: secCAP + " Fig. 36", Keyword: Should, Binds: Controller,
			Statements: []string{"B-CAP-05"},
			Text:       "CSS: For Discovery controllers, this field should have only the NCSS bit set to 1",
			Title:      "the discovery controller's CAP.CSS is 01h (NCSS only)"}, func(ctx context.Context, s *Spec) {
			r := s.rawDiscovery(ctx)
			v, err := propGet(r, nvme.PropCAP, true)
			s.mustProperty(err, nvme.PropCAP)
			s.Conform(fmt.Sprintf("CSS %#x", nvme.CAP(v).CSS()), fmt.Sprintf("CSS %#x", nvme.CSSNVM))
		})

		// Linux hosts write IOCQES 4 and IOSQES 6 to every controller's
		// CC; a Discovery controller, which supports no I/O queues,
		// keeps them 0 (the write may also be refused).
		Check(Requirement{ID: "FAB-PROP-033", Section: secCC + " Fig. 41; " + secProps, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CC-01"},
			Text:       "IOCQES, IOSQES: If the controller does not support I/O queues, then this field shall be read-only with a value of 0h. For Discovery controllers, this field is reserved (Fig. 41); All reserved ... bits within properties are read-only and return 0h when read (3.1.4)",
			Title:      "on the discovery controller, CC.IOCQES and CC.IOSQES read 0 after a Property Set of CC writing 4 and 6 (the Set may fail with Invalid Field in Command)"}, func(ctx context.Context, s *Spec) {
			r := s.rawDiscovery(ctx)
			s.OneOf(Outcome(propSet(r, nvme.PropCC, false, ccEnable&^nvme.CCEnable)), "success", stInvalidField)
			v, err := propGet(r, nvme.PropCC, false)
			s.Must(err, "Property Get CC")
			s.Conform(fmt.Sprintf("IOCQES %d IOSQES %d", (v>>20)&0xF, (v>>16)&0xF), "IOCQES 0 IOSQES 0")
		})

		// VS is never 0 (MJR is at least 1): the version must be in
		// bytes 03:00.
		Check(Requirement{ID: "FAB-PROP-034", Section: secPropGetResp + "; " + secReservedKW, Keyword: Indicative, Binds: Controller,
			Statements: []string{"B-6.5-03"},
			Text:       "If the size of the property is four bytes, then the value is specified in bytes 03:00 and bytes 07:04 are reserved (Fig. 553); A reserved bit, byte, word, field, property, or register shall be cleared to 0h (1.4.1.6)",
			Title:      "4-byte Property Gets of VS, CC and CSTS have bytes 07:04 of the response 0, and VS's version in bytes 03:00"}, func(ctx context.Context, s *Spec) {
			r, _ := s.rawAdmin(ctx, plainIC)
			var bad []string
			for _, p := range []struct {
				name string
				off  uint32
			}{{"VS", nvme.PropVS}, {"CC", nvme.PropCC}, {"CSTS", nvme.PropCSTS}} {
				v, err := propGet(r, p.off, false)
				if p.off == nvme.PropVS {
					s.mustProperty(err, nvme.PropVS)
				}
				s.Must(err, "Property Get "+p.name)
				if hi := uint32(v >> 32); hi != 0 {
					bad = append(bad, fmt.Sprintf("%s bytes 07:04 %#x", p.name, hi))
				}
				if p.off == nvme.PropVS && uint32(v) == 0 {
					bad = append(bad, "VS bytes 03:00 0")
				}
			}
			want := "bytes 07:04 0, VS in bytes 03:00"
			s.ConformAll(bad, want)
		})
	})

	Describe("controller state", Label("fabrics-controller"), func() {
		// The model a controller reports is Identify FCATT bit 0 (3.1.3.3:
		// "The Identify Controller data structure also indicates whether
		// an NVM subsystem is dynamic or static"); three controllers of
		// the subsystem at once must all report the same one.
		Check(Requirement{ID: "FAB-CTRL-001", Section: secSubsysModel, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-3.1-01"},
			Text:       "All controllers in an NVM subsystem shall support the same controller model",
			Title:      "three controllers of the subsystem, held at once, all report the same controller model in Identify FCATT bit 0"}, func(ctx context.Context, s *Spec) {
			m := s.subsystemModel(ctx)
			model := func(static bool) string {
				if static {
					return "static"
				}
				return "dynamic"
			}
			obs, want := "the first controller "+model(m.Static), "the first controller "+model(m.Static)
			for i := 2; i <= 3; i++ {
				r := s.Raw(ctx, plainIC)
				_, err := s.adminConnect(r)
				if err != nil {
					s.Lacks(fmt.Sprintf("controller %d for this host at once (admin Connect: %s)", i, Outcome(err)))
				}
				s.enableRaw(ctx, r)
				id := s.identifyCtrl(r)
				obs += fmt.Sprintf(", controller %d %s", i, model(id.FCATT&fcattStatic != 0))
				want += fmt.Sprintf(", controller %d %s", i, model(m.Static))
			}
			s.Conform(obs, want)
		})

		// The block is read back through a second association: a reset
		// that lost the write would show there.
		Check(Requirement{ID: "FAB-CTRL-002", Section: secCC + " Fig. 41", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CC-04"},
			Text:       "EN: The controller shall ensure that there is no impact (e.g., data loss) caused by that Controller Reset to the results of commands that have had corresponding completion queue entries posted to an I/O Completion Queue prior to that Controller Reset",
			Title:      "a Write completed before a Controller Reset (CC.EN 1 to 0) reads back, after the reset, through a new association"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			data := randomData(int(io.bs))
			s.writeInCapsule(io, propsLBA, data)
			if !bytes.Equal(s.readBlock(io, propsLBA), data) {
				Skip(fmt.Sprintf("%s: the Write does not read back even before the reset; the I/O checks (IO-RW-*) judge that", s.Req.ID))
			}
			s.resetController(ctx, io.admin, io.cap)
			got := s.readOnNewAssociation(ctx, propsLBA)
			obs := "the written data"
			if !bytes.Equal(got, data) {
				obs = "other data"
			}
			s.Conform(obs, "the written data")
		})

		// After CC.EN goes 1 to 0: the admin queue aborts a non-Fabrics
		// command with Command Sequence Error (3.3.2.3, what the Fabrics
		// binding names for a disabled controller), and a Write on the
		// old I/O queue is not processed: it fails, gets no answer or its
		// connection ends, and the block keeps its data, read through a
		// new association before and after the Write (FAB-CTRL-002
		// judges whether the reset kept the data written before it).
		Check(Requirement{ID: "FAB-CTRL-003", Section: secCC + " Fig. 41; " + secQueueState, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CC-03", "B-CC-05"},
			Text:       "EN: When cleared to '0', then the controller shall not process commands nor post completion queue entries to Completion Queues (Fig. 41); A disabled controller shall abort all commands other than Fabrics commands on the Admin Queue with a status code of Command Sequence Error (3.3.2.3)",
			Title:      "after CC.EN goes 1 to 0, an Identify fails with Command Sequence Error and a Write on the old I/O queue is not processed (no success, the block unchanged)"}, func(ctx context.Context, s *Spec) {
			io := s.SetupIO(ctx, plainIC)
			const lba = propsLBA + 8
			s.writeInCapsule(io, lba, randomData(int(io.bs)))
			s.resetController(ctx, io.admin, io.cap)
			v := s.SetupIO(ctx, plainIC)
			old := s.readBlock(v, lba)
			_, _, err := io.admin.Command(nvme.IdentifyCmd(nvme.CNSController, 0, 0), nil)
			s.Conform("Identify: "+Outcome(err), "Identify: "+stSeqError)
			w := nvme.WriteCmd(io.nsid, lba, 1)
			nvme.SetInCapsule(&w, io.bs)
			w.CID = io.io.NextCID()
			obs := "close without C2HTermReq"
			if io.io.Conn.Send(&tcp.CapsuleCmd{SQE: w}, bytes.Repeat([]byte{0xA5}, int(io.bs))) == nil {
				obs = awaitResponse(io.io, w.CID, 2*time.Second)
			}
			_ = io.io.Close()
			s.OneOf("Write: "+obs, "Write: "+stSeqError, "Write: no reaction", "Write: close without C2HTermReq")
			got := s.readBlock(v, lba)
			res := "the block unchanged"
			if !bytes.Equal(got, old) {
				res = "the block changed"
			}
			s.Conform(res, "the block unchanged")
		})

		// The shutdown is asked with CC.EN 1; the reset clears EN and SHN
		// together (a write keeping SHN 01b could count as asking for a
		// shutdown again).
		Check(Requirement{ID: "FAB-CTRL-004", Section: secCSTS + " Fig. 42", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CSTS-05"},
			Text:       "SHST: If this field is set to 10b when a CLR is initiated by a method other than NVM Subsystem Reset and the CSTS.ST bit is cleared to '0', then that CLR shall clear this field to 00b",
			Title:      "after a completed controller shutdown (CC.SHN 01b, SHST 10b), a Controller Reset (CC.EN 1 to 0) leaves CSTS.SHST 00b"}, func(ctx context.Context, s *Spec) {
			r, _, cp := s.EnabledAdmin(ctx, plainIC)
			csts, ok := shutdownComplete(ctx, s, r, cp, ccEnable|nvme.CCShnNormal)
			if !ok || csts&cstsST != 0 {
				Skip(fmt.Sprintf("%s: no controller shutdown reported complete (CSTS %#x; FAB-PROP-022 judges SHST)", s.Req.ID, csts))
			}
			s.Must(propSet(r, nvme.PropCC, false, ccEnable&^nvme.CCEnable), "Property Set CC (EN 0, SHN 00b)")
			// Fig. 42 note 1: fields may pass other values during a CLR
			// before the reset value; wait for RDY 0 and SHST 00b.
			csts, _, err := waitCSTS(ctx, r, nvme.CSTSReady|nvme.CSTSShstMask, 0, readyTimeout(cp))
			s.Must(err, "Property Get CSTS")
			s.Conform(fmt.Sprintf("SHST %02bb", (csts&nvme.CSTSShstMask)>>nvme.CSTSShstShift), "SHST 00b")
		})

		// Both ways back from a completed shutdown that Fig. 42 names: a
		// CLR then enabling; or, with CC.EN 0, EN set and SHN cleared in
		// one write. Every CSTS read with RDY 1 must show SHST 00b.
		Check(Requirement{ID: "FAB-CTRL-005", Section: secCSTS + " Fig. 42", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-CSTS-04"},
			Text:       "RDY: If a controller shutdown is reported as in progress or is reported as complete ..., then before this bit is allowed to be set to '1' from '0', controller shutdown processing shall stop ... and the CSTS.SHST field shall be cleared to 00b; SHST: a CLR followed by enabling the controller is required; or the CC.EN bit is required to be set to '1' and the CC.SHN bit is required to be cleared to 00b with the same write",
			Title:      "re-enabling after a completed shutdown (by a reset then CC.EN=1, or by EN=1 and SHN=00b in one write after a shutdown with EN cleared), CSTS never shows RDY 1 with SHST other than 00b"}, func(ctx context.Context, s *Spec) {
			var bad []string
			// A CLR, then enabling.
			r, _, cp := s.EnabledAdmin(ctx, plainIC)
			if csts, ok := shutdownComplete(ctx, s, r, cp, ccEnable|nvme.CCShnNormal); !ok {
				Skip(fmt.Sprintf("%s: no controller shutdown reported complete (CSTS %#x; FAB-PROP-022 judges SHST)", s.Req.ID, csts))
			}
			s.resetController(ctx, r, cp)
			dep, ready := enableWatchingSHST(ctx, s, r, cp, ccEnable)
			if dep != "" {
				bad = append(bad, "after a reset: "+dep)
			}
			if !ready {
				AddReportEntry("observed", fmt.Sprintf("%s: not ready within CAP.TO after the reset and CC.EN=1 (FAB-PROP-023 judges that)", s.Req.ID))
			}
			// A shutdown that also clears EN (a reset and a shutdown, Fig.
			// 41 SHN), then EN 1 and SHN 00b in one write.
			r2, _, cp2 := s.EnabledAdmin(ctx, plainIC)
			if csts, ok := shutdownComplete(ctx, s, r2, cp2, (ccEnable&^nvme.CCEnable)|nvme.CCShnNormal); ok {
				dep, ready = enableWatchingSHST(ctx, s, r2, cp2, ccEnable)
				if dep != "" {
					bad = append(bad, "EN and SHN in one write: "+dep)
				}
				if !ready {
					AddReportEntry("observed", fmt.Sprintf("%s: not ready within CAP.TO after CC.EN=1 with SHN 00b", s.Req.ID))
				}
			} else {
				AddReportEntry("observed", fmt.Sprintf("%s: a shutdown written with CC.EN cleared was not reported complete (CSTS %#x): that way back is not tried", s.Req.ID, csts))
			}
			s.ConformAll(bad, "RDY 1 only with SHST 00b")
		})

		// The Commands Supported and Effects log is fixed for a
		// controller, so the bytes at offsets 4 and 6 can be compared
		// with one read of the whole page.
		Check(Requirement{ID: "FAB-CTRL-006", Section: secGetLogOffset + " Fig. 199", Keyword: Shall, Binds: Controller,
			Statements: []string{"B-5.1.12-02"},
			Text:       "LPOL: The offset shall be dword aligned ... The controller may report an error of Invalid Field in Command if bits 1:0 are not cleared to 00b. If the controller does not report an error of Invalid Field in Command, then the controller shall operate as if bits 1:0 are cleared to 00b",
			Title:      "a Get Log Page of the Commands Supported and Effects log at offset 6 fails with Invalid Field in Command or returns the bytes from offset 4"}, func(ctx context.Context, s *Spec) {
			r, _, _ := s.EnabledAdmin(ctx, plainIC)
			id := s.identifyCtrl(r)
			if id.LPA&(1<<2) == 0 {
				s.Lacks("extended data for Get Log Page (LPA bit 2), which gives the Log Page Offset fields")
			}
			if id.LPA&nvme.LPACommandsEffects == 0 {
				s.Lacks("the Commands Supported and Effects log (LPA bit 1)")
			}
			_, full, err := r.Command(nvme.GetLogPageCmd(nvme.LogCommandsEffects, 0, 0, 0, 4096), nil)
			s.Must(err, "Get Log Page 05h")
			if len(full) < 72 {
				s.checkFail("the Commands Supported and Effects log is %d bytes", len(full))
			}
			const n = 64
			// A controller that does not serve the aligned offset 4 right
			// does not take offsets for this log at all: ADM-LOG-011
			// judges that, and the unaligned one says nothing more.
			_, at4, err := r.Command(nvme.GetLogPageCmd(nvme.LogCommandsEffects, 0, 0, 4, n), nil)
			if err != nil || !bytes.Equal(at4, full[4:4+n]) {
				Skip(fmt.Sprintf("%s: a read of the log at the aligned offset 4 does not give its bytes either (%s); ADM-LOG-011 judges Log Page Offsets", s.Req.ID, Outcome(err)))
			}
			_, got, err := r.Command(nvme.GetLogPageCmd(nvme.LogCommandsEffects, 0, 0, 6, n), nil)
			obs := Outcome(err)
			if err == nil {
				switch {
				case bytes.Equal(got, full[4:4+n]):
					obs = "the bytes from offset 4"
				case bytes.Equal(got, full[6:6+n]):
					obs = "the bytes from offset 6"
				default:
					obs = "other bytes"
				}
			}
			s.OneOf(obs, stInvalidField, "the bytes from offset 4")
		})

		// The Connect's data is in the capsule, described by its SGL
		// Data Block descriptor as always; only PSDT differs.
		Check(Requirement{ID: "FAB-CTRL-007", Section: secFabricsCDW0, Keyword: Indicative, Binds: Controller,
			Statements: []string{"B-F95-02"},
			Text:       "PSDT 00b: No Data Transferred: This value is used for Fabrics commands that do not transfer data. If this value is used for Fabrics commands that transfer data, then SGLs are used for this transfer",
			Title:      "an admin Connect (which carries data) with PSDT 00b succeeds"}, func(ctx context.Context, s *Spec) {
			send := func(cntlid uint16) (nvme.CQE, error) {
				r := s.Raw(ctx, plainIC)
				cd := nvme.ConnectData{HostID: s.hostID(s.hostNQN()), CNTLID: cntlid, SubNQN: s.Target.Config.SubNQN, HostNQN: s.hostNQN()}
				cmd := nvme.Connect{SQSIZE: initiator.AdminQueueSize - 1, KATO: s.rawAdminKATO()}
				sqe := cmd.SQE(0)
				sqe.Flags &^= nvme.PSDTMask
				cqe, _, err := r.Command(sqe, cd.Append(nil))
				return cqe, err
			}
			cqe, err := send(cntlidAnyDynamic)
			if nvme.ConnectRefusedAtCNTLID(cqe, err) {
				cqe, err = send(cntlidAnyStatic) // a static-model subsystem
			}
			s.Conform(ConnectOutcome(cqe, err), "success")
		})

		// FAB-IOQ-011 sends Property Get; this, Property Set, the other
		// Fabrics command Fig. 541 does not allow on an I/O queue. The
		// Set writes CC 0: applied, it would disable the controller, and
		// CSTS.RDY (not CC, which FAB-PROP-011 judges) shows it.
		Check(Requirement{ID: "FAB-CTRL-008", Section: secFabricsTypes, Keyword: Shall, Binds: Controller,
			Statements: []string{"B-6-02"},
			Text:       "Property Set: I/O Queue: No (Fig. 541); If a Fabrics command that is not supported on an I/O Queue is sent on an I/O Queue, that command shall be aborted with a status code of Invalid Field in Command",
			Title:      "a Property Set of CC (0) on an I/O queue fails with Invalid Field in Command and the controller stays ready (CSTS.RDY 1)"}, func(ctx context.Context, s *Spec) {
			admin, cntlid, _ := s.EnabledAdmin(ctx, plainIC)
			io := s.IOQueue(ctx, plainIC, cntlid, 1, 15)
			s.Conform(Outcome(propSet(io, nvme.PropCC, false, 0)), stInvalidField)
			v, err := propGet(admin, nvme.PropCSTS, false)
			s.Must(err, "Property Get CSTS on the admin queue")
			s.Conform(fmt.Sprintf("CSTS.RDY %d", v&nvme.CSTSReady), "CSTS.RDY 1")
		})
	})
})
