package suites

// The admin area: an I/O controller's Identify data, namespaces, log
// pages, features, keep alive, asynchronous events and Abort, checked
// against each other and against what the controller actually does.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// printableField reports what is wrong with an ASCII Identify field
// (Base 2.0 1.5: ASCII strings are left justified and padded with spaces),
// or "".
func printableField(name string, b []byte, mayBeEmpty bool) string {
	end := len(b)
	for end > 0 && b[end-1] == ' ' {
		end--
	}
	if end == 0 && !mayBeEmpty {
		return name + " is empty"
	}
	for i, c := range b[:end] {
		if c < 0x20 || c > 0x7E {
			return fmt.Sprintf("%s byte %d is %#02x, not printable ASCII (or not space padded)", name, i, c)
		}
	}
	if end > 0 && b[0] == ' ' {
		return name + " is not left justified"
	}
	return ""
}

// idCtrl is the Identify Controller data the association read.
func idCtrl(c *initiator.Controller) *nvme.IdentifyController { return c.IdentifyData() }

var _ = Describe("admin", Label("admin"), func() {
	// Identify Controller.

	Check(Requirement{ID: "ADM-ID-001", Section: secIDCtrl, Keyword: Indicative, Binds: Controller,
		Text:  `VER: "contains the value reported in the Version property (i.e., VS property) defined in section 3.1.4.2"`,
		Title: "Identify Controller VER equals the Version property"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		s.Conform(nvme.VersionString(idCtrl(c).VER), nvme.VersionString(c.Version()))
	})

	Check(Requirement{ID: "ADM-ID-002", Section: secIDCtrl, Keyword: Indicative, Binds: Controller,
		Text:  `CNTLID: "Contains the NVM subsystem unique controller identifier associated with the controller"`,
		Title: "Identify Controller CNTLID equals the controller ID the Connect response returned"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		s.Conform(fmt.Sprintf("CNTLID %d", idCtrl(c).CNTLID), fmt.Sprintf("CNTLID %d", c.CNTLID()))
	})

	Check(Requirement{ID: "ADM-ID-003", Section: secIDCtrl, Keyword: Indicative, Binds: Controller,
		Text:  `SUBNQN: the NVM Subsystem NVMe Qualified Name of the subsystem the controller belongs to (M for I/O controllers)`,
		Title: "Identify Controller SUBNQN is the NQN of the subsystem connected to"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		s.Conform(idCtrl(c).SUBNQN, s.Target.Config.SubNQN)
	})

	Check(Requirement{ID: "ADM-ID-004", Section: secASCII, Keyword: Indicative, Binds: Controller,
		Text:  `SN, MN, FR: "as an ASCII string. Refer to section 1.4.2 for ASCII string requirements" (Figure 312)`,
		Title: "SN and MN are non-empty, and SN, MN and FR are printable ASCII, left justified and space padded"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		b, err := identifyRaw(ctx, c, nvme.CNSController, 0)
		s.mustOK(err, "Identify Controller")
		for _, p := range []string{printableField("SN", b[4:24], false), printableField("MN", b[24:64], false), printableField("FR", b[64:72], true)} {
			s.expectThat(p == "", "%s", p)
		}
	})

	Check(Requirement{ID: "ADM-ID-005", Section: secIDCtrl, Keyword: Shall, Binds: Controller,
		Text:  `CQES: "The required value shall be 4, corresponding to 16"; SQES likewise 6 (64 bytes); the maximum is "greater than or equal to the required"`,
		Title: "SQES and CQES give 64-byte and 16-byte entries as the required sizes"}, func(ctx context.Context, s *Spec) {
		id := idCtrl(s.adminController(ctx))
		s.Conform(fmt.Sprintf("SQES %#x CQES %#x", id.SQES&0xF, id.CQES&0xF), "SQES 0x6 CQES 0x4")
		s.expectThat(id.SQES>>4 >= 6 && id.CQES>>4 >= 4, "maximum entry sizes below the required ones: SQES %#x CQES %#x", id.SQES, id.CQES)
	})

	Check(Requirement{ID: "ADM-ID-006", Section: secIDCtrl, Keyword: Indicative, Binds: Controller,
		Text:  `MAXCMD: "This field is mandatory for NVMe over Fabrics implementations"; "If the field is not used, it shall be cleared to 0h"`,
		Title: "MAXCMD is not zero on a fabrics controller"}, func(ctx context.Context, s *Spec) {
		// MAXCMD "may be larger than the size of the corresponding
		// Submission Queue" and only guides the host: the queue size the
		// controller granted is no verdict on it.
		id := idCtrl(s.adminController(ctx))
		s.expectThat(id.MAXCMD != 0, "MAXCMD is 0 (mandatory on NVMe over Fabrics)")
	})

	Check(Requirement{ID: "ADM-ID-007", Section: secIDCtrl, Keyword: Indicative, Binds: Controller,
		Text:  `NN: "indicates the maximum value of a valid NSID for the NVM subsystem"`,
		Title: "NN is at least every active NSID"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		nn := idCtrl(c).NN
		for _, id := range ids {
			s.expectThat(id <= nn, "active NSID %d exceeds NN %d", id, nn)
		}
	})

	Check(Requirement{ID: "ADM-ID-008", Section: secTCPSGL, Keyword: Indicative, Binds: Controller,
		Text:  `"The NVMe/TCP transport supports exactly one SGL descriptor per command"; "An SGL Data Block descriptor with an SGL Descriptor Sub Type value of 1h specifies the use of in-capsule data"`,
		Title: "SGLS reports SGL support (required on fabrics), with the offset subtype when in-capsule data is supported"}, func(ctx context.Context, s *Spec) {
		id := idCtrl(s.adminController(ctx))
		s.expectThat(id.SGLS&3 == 1 || id.SGLS&3 == 2, "SGLS bits 1:0 are %d: no SGL support", id.SGLS&3)
		if id.IOCCSZ > 4 {
			s.expectThat(id.SGLS&nvme.SGLSOffset != 0, "IOCCSZ %d allows in-capsule data but SGLS bit 20 (offset) is clear", id.IOCCSZ)
		}
	})

	Check(Requirement{ID: "ADM-ID-009", Section: secTCPCapsules, Keyword: Shall, Binds: Controller,
		Text:  `"IORCSZ is 16 bytes"; "ICDOFF shall be cleared to '0'"; I/O Queue Command capsule "64 to (IOCCSZ x 16)" bytes`,
		Title: "IOCCSZ is at least 4, IORCSZ is 1 and ICDOFF is 0 (NVMe/TCP)"}, func(ctx context.Context, s *Spec) {
		id := idCtrl(s.adminController(ctx))
		obs := fmt.Sprintf("IORCSZ %d ICDOFF %d", id.IORCSZ, id.ICDOFF)
		s.Conform(obs, "IORCSZ 1 ICDOFF 0")
		s.expectThat(id.IOCCSZ >= 4, "IOCCSZ %d below 4", id.IOCCSZ)
	})

	Check(Requirement{ID: "ADM-ID-011", Section: secCtrlModel, Keyword: Indicative, Binds: Controller,
		Text:  `"To use the dynamic controller model, the host specifies a controller identifier of FFFFh" in Connect`,
		Title: "a controller created through a dynamic Connect (CNTLID FFFFh) reports the dynamic model (FCATT bit 0 clear)"}, func(ctx context.Context, s *Spec) {
		r := s.Raw(ctx, plainIC)
		cqe, err := s.connect(r, connectArgs{SQSIZE: initiator.AdminQueueSize - 1, CNTLID: cntlidAnyDynamic})
		if nvme.ConnectRefusedAtCNTLID(cqe, err) {
			s.Lacks("the dynamic controller model: the subsystem refuses CNTLID FFFFh (" + Outcome(err) + "), as a static-model one does")
		}
		s.Must(err, "admin Connect with CNTLID FFFFh")
		s.enableRaw(ctx, r)
		id := s.identifyCtrl(r)
		s.Conform(fmt.Sprintf("FCATT bit 0 = %d", id.FCATT&1), "FCATT bit 0 = 0")
	})

	Check(Requirement{ID: "ADM-ID-012", Section: secIDCtrl, Keyword: Shall, Binds: Controller,
		Text:  `CNTRLTYPE: implementations compliant to revision 1.4 or later "shall report a controller type"; 1h is I/O controller`,
		Title: "CNTRLTYPE is 1 (I/O controller) when VER is 1.4 or later"}, func(ctx context.Context, s *Spec) {
		id := idCtrl(s.adminController(ctx))
		if id.VER < nvme.MakeVersion(1, 4, 0) {
			s.Lacks("VER 1.4 or later")
		}
		s.Conform(fmt.Sprintf("CNTRLTYPE %d", id.CNTRLTYPE), "CNTRLTYPE 1")
	})

	Check(Requirement{ID: "ADM-ID-013", Section: secTCPKeepAlive, Keyword: Indicative, Binds: Controller,
		Text:  `"The NVMe/TCP Transport requires the use of the Keep Alive feature"`,
		Title: "KAS is not zero: keep alive is required on NVMe over Fabrics"}, func(ctx context.Context, s *Spec) {
		id := idCtrl(s.adminController(ctx))
		s.expectThat(id.KAS != 0, "KAS is 0")
	})

	Check(Requirement{ID: "ADM-ID-015", Section: secIdentify, Keyword: Indicative, Binds: Controller,
		Text:  `a reserved CNS value: Invalid Field in Command (Figure 102, 02h: "A reserved coded value or an unsupported value in a defined field")`,
		Title: "Identify with a reserved CNS fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		_, err := identifyRaw(ctx, c, 0x0E, 0)
		s.Conform(Outcome(err), "status 0x0/0x2")
	})

	// Namespaces.

	Check(Requirement{ID: "ADM-NS-001", Section: secNVMIDNS, Keyword: Indicative, Binds: Controller,
		Text:  `Figure 114: NSZE "the total size of the namespace in logical blocks", NCAP "the maximum number of logical blocks that may be allocated", NUSE "less than or equal to the value of the Namespace Capacity field"`,
		Title: "every active namespace has NSZE >= NCAP >= NUSE and NSZE > 0"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		for _, id := range ids {
			ns, err := c.IdentifyNamespace(ctx, id)
			s.mustOK(err, fmt.Sprintf("Identify Namespace %d", id))
			s.expectThat(ns.NSZE > 0 && ns.NSZE >= ns.NCAP && ns.NCAP >= ns.NUSE,
				"namespace %d: NSZE %d NCAP %d NUSE %d", id, ns.NSZE, ns.NCAP, ns.NUSE)
		}
	})

	Check(Requirement{ID: "ADM-NS-002", Section: secNVMIDNS, Keyword: Indicative, Binds: Controller,
		Text:  `FLBAS selects one of the NLBAF+1 LBA formats; LBADS "A value smaller than 9 (i.e., 512 bytes) is not supported"`,
		Title: "every active namespace's FLBAS selects a format within NLBAF whose LBADS is at least 9"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		for _, id := range ids {
			ns, err := c.IdentifyNamespace(ctx, id)
			s.mustOK(err, fmt.Sprintf("Identify Namespace %d", id))
			i := ns.LBAFIndex()
			s.expectThat(i <= int(ns.NLBAF), "namespace %d: FLBAS format %d beyond NLBAF %d", id, i, ns.NLBAF)
			ds := ns.LBAF[i].LBADS
			s.expectThat(ds >= 9 && ds < 32, "namespace %d: LBADS %d of the format in use", id, ds)
		}
	})

	Check(Requirement{ID: "ADM-NS-003", Section: secNVMIDNS, Keyword: Indicative, Binds: Controller,
		Text:  `"If that value in the NSID field is an inactive NSID, then the controller returns a zero filled data structure"`,
		Title: "Identify Namespace of an inactive NSID returns a zero-filled structure"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		nsid := s.inactiveNSID(ctx, c)
		b, err := identifyRaw(ctx, c, nvme.CNSNamespace, nsid)
		obs := Outcome(err)
		if err == nil && !allBytes(b, 0) {
			obs = "success with non-zero data"
		}
		s.Conform(obs, "success")
	})

	Check(Requirement{ID: "ADM-NS-004", Section: secNSIDTypes, Keyword: Shall, Binds: Controller,
		Text:  `"Specifying an invalid NSID in a command that uses the NSID field shall cause the controller to abort the command with a status code of Invalid Namespace or Format"; NSID 0h is not valid`,
		Title: "Identify Namespace with NSID 0 fails with Invalid Namespace or Format"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		_, err := identifyRaw(ctx, c, nvme.CNSNamespace, 0)
		s.Conform(Outcome(err), "status 0x0/0xb")
	})

	Check(Requirement{ID: "ADM-NS-005", Section: secNVMIDNS, Keyword: Shall, Binds: Controller,
		Text:  `"If the NSID field is set to FFFFFFFFh, then the controller shall return an NVM Command Set Identify Namespace data structure" with the fields not "Reported" (NSZE, NCAP, NUSE ...) "cleared to 0h"; without Namespace Management it "may abort the command with a status code of Invalid Namespace or Format"`,
		Title: "Identify Namespace with NSID FFFFFFFFh returns the common capabilities (NSZE, NCAP, NUSE cleared) or, without Namespace Management, may fail with Invalid Namespace or Format"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		b, err := identifyRaw(ctx, c, nvme.CNSNamespace, 0xFFFFFFFF)
		obs := Outcome(err)
		if err == nil && !allBytes(b[:24], 0) {
			obs = "success with NSZE, NCAP or NUSE not cleared"
		}
		if idCtrl(c).OACS&(1<<3) != 0 {
			// With Namespace Management the structure is demanded.
			s.Conform(obs, "success")
			return
		}
		s.conformOneOf(obs, "success", "status 0x0/0xb")
	})

	Check(Requirement{ID: "ADM-NS-006", Section: secActiveList, Keyword: Indicative, Binds: Controller,
		Text:  `"active NSIDs in increasing order that are greater than the value specified in the Namespace Identifier (NSID) field"`,
		Title: "the Active Namespace ID list is ascending, lists only NSIDs above the one given, and each one identifies"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		s.expectThat(slices.IsSorted(ids) && len(slices.Compact(slices.Clone(ids))) == len(ids), "list not strictly ascending: %v", ids)
		for _, id := range ids {
			ns, err := c.IdentifyNamespace(ctx, id)
			s.mustOK(err, fmt.Sprintf("Identify Namespace %d", id))
			s.expectThat(ns.NSZE != 0, "listed NSID %d identifies as inactive (NSZE 0)", id)
		}
		if len(ids) > 0 {
			b, err := identifyRaw(ctx, c, nvme.CNSActiveNSList, ids[0])
			s.mustOK(err, "Identify Active Namespace ID list from the first NSID")
			got := nvme.DecodeNSList(b)
			s.expectThat(slices.Equal(got, ids[1:]), "list above NSID %d is %v, want %v", ids[0], got, ids[1:])
		}
	})

	Check(Requirement{ID: "ADM-NS-007", Section: secActiveList, Keyword: Shall, Binds: Controller,
		Text:  `"The controller shall abort the command with a status code of Invalid Namespace or Format if the NSID field is set to FFFFFFFEh or FFFFFFFFh"`,
		Title: "the Active Namespace ID list from NSID FFFFFFFEh or FFFFFFFFh fails with Invalid Namespace or Format"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		for _, nsid := range []uint32{0xFFFFFFFE, 0xFFFFFFFF} {
			_, err := identifyRaw(ctx, c, nvme.CNSActiveNSList, nsid)
			s.Conform(fmt.Sprintf("NSID %#x: %s", nsid, Outcome(err)), fmt.Sprintf("NSID %#x: status 0x0/0xb", nsid))
		}
	})

	Check(Requirement{ID: "ADM-NS-008", Section: secNSDesc, Keyword: Indicative, Binds: Controller,
		Text:  `"Namespace Identification Descriptor structures consist of one or more Namespace Identifiers (NID)"; "Each NID is assigned to a namespace at namespace creation and remains fixed"`,
		Title: "every active namespace's Identification Descriptor list is well formed and has an EUI64, NGUID or UUID"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		for _, id := range ids {
			ds, err := c.NamespaceDescriptors(ctx, id)
			s.mustOK(err, fmt.Sprintf("Namespace Identification Descriptor list of %d", id))
			seen := map[uint8]bool{}
			unique := false
			for _, d := range ds {
				s.expectThat(!seen[d.NIDT], "namespace %d: descriptor type %d appears twice", id, d.NIDT)
				seen[d.NIDT] = true
				if d.NIDT >= nvme.NIDTEUI64 && d.NIDT <= nvme.NIDTUUID {
					s.expectThat(!allBytes(d.NID, 0), "namespace %d: descriptor type %d is all zero", id, d.NIDT)
					unique = true
				}
			}
			s.expectThat(unique, "namespace %d: no EUI64, NGUID or UUID descriptor", id)
		}
	})

	Check(Requirement{ID: "ADM-NS-009", Section: secNSDesc, Keyword: Indicative, Binds: Controller,
		Text:  `the NGUID and EUI64 descriptors carry the namespace's NGUID and EUI64 (the same identifiers Identify Namespace reports)`,
		Title: "NGUID and EUI64 descriptors match the Identify Namespace fields"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		for _, id := range ids {
			ns, err := c.IdentifyNamespace(ctx, id)
			s.mustOK(err, fmt.Sprintf("Identify Namespace %d", id))
			ds, err := c.NamespaceDescriptors(ctx, id)
			s.mustOK(err, fmt.Sprintf("Namespace Identification Descriptor list of %d", id))
			for _, d := range ds {
				switch d.NIDT {
				case nvme.NIDTNGUID:
					s.expectThat(slices.Equal(d.NID, ns.NGUID[:]), "namespace %d: NGUID descriptor %x, Identify Namespace %x", id, d.NID, ns.NGUID)
				case nvme.NIDTEUI64:
					s.expectThat(slices.Equal(d.NID, ns.EUI64[:]), "namespace %d: EUI64 descriptor %x, Identify Namespace %x", id, d.NID, ns.EUI64)
				}
			}
		}
	})

	Check(Requirement{ID: "ADM-NS-010", Section: secActiveList, Keyword: May, Binds: Controller,
		Text:  `namespace management through the target's own control: an added namespace is active, a removed one is not`,
		Title: "a namespace added on the target becomes active with its size, and inactive once removed"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		nsid := s.inactiveNSID(ctx, c)
		sub := s.Target.Config.SubNQN
		id := strconv.FormatUint(uint64(nsid), 10)
		remove := Action{Verb: "remove-namespace", Args: map[string]string{"subnqn": sub, "nsid": id}}
		s.act(ctx, "add a namespace", Action{Verb: "add-namespace", Args: map[string]string{"subnqn": sub, "nsid": id, "size": "16MiB"}}, &remove)
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		s.expectThat(slices.Contains(ids, nsid), "added NSID %d not in the active list %v", nsid, ids)
		ns := s.nsGeometry(ctx, c, nsid)
		s.expectThat(ns.NLBA*uint64(ns.BS) == 16<<20, "added namespace has %d blocks of %d bytes, not 16 MiB", ns.NLBA, ns.BS)
		s.mustOK(s.Target.Config.Control.Do(ctx, remove), "control remove-namespace")
		ids, err = c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		s.expectThat(!slices.Contains(ids, nsid), "removed NSID %d still in the active list %v", nsid, ids)
	})

	// Log pages.

	Check(Requirement{ID: "ADM-LOG-001", Section: secLogError, Keyword: Indicative, Binds: Controller,
		Text:  `"Extended error information is provided when the More (M) bit is set to '1'"; "the most recent error being returned as the first log entry"`,
		Title: "the Error Information log lists the most recent error first, and a failed command whose completion sets More (M) is that entry, with its SQID, CID and status"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		entries := func() []nvme.ErrorLogEntry {
			b := make([]byte, min(int(idCtrl(c).ELPE)+1, 64)*nvme.ErrorLogEntrySize)
			s.mustOK(c.GetLogPage(ctx, nvme.LogError, 0xFFFFFFFF, 0, 0, b), "Get Log Page Error Information")
			out := make([]nvme.ErrorLogEntry, len(b)/nvme.ErrorLogEntrySize)
			for i := range out {
				_ = out[i].Decode(b[i*nvme.ErrorLogEntrySize:])
			}
			return out
		}
		var newest uint64
		for _, e := range entries() {
			newest = max(newest, e.ErrorCount)
		}
		// The queue assigns the CID; the completion says which.
		cqe, err := c.Admin().Exec(ctx, nvme.IdentifyCmd(0x0E, 0, 0), make([]byte, nvme.IdentifyDataSize), initiator.FromController)
		if err == nil {
			// ADM-ID-015 judges the reserved CNS; here there is no error to look for.
			s.Lacks("a failed command to look up (Identify CNS 0Eh succeeded)")
		}
		after := entries()
		// An error count of 0 marks an entry that holds no error; the
		// ones that do are numbered in the order they occurred.
		order := "most recent first"
		for i := 1; i < len(after) && after[i].ErrorCount != 0; i++ {
			if after[i].ErrorCount >= after[i-1].ErrorCount {
				order = fmt.Sprintf("entry %d has error count %d after entry %d's %d", i, after[i].ErrorCount, i-1, after[i-1].ErrorCount)
				break
			}
		}
		if cqe.Status&nvme.StatusMore == 0 {
			// M cleared: "there is no additional status information for
			// this command", so an entry is neither demanded nor refused.
			AddReportEntry("observed", fmt.Sprintf("%s: More bit clear in the failed command's completion: no entry required", s.Req.ID))
			s.Conform(order, "most recent first")
			return
		}
		obs := "no new entry first"
		if first := after[0]; first.ErrorCount > newest {
			obs = fmt.Sprintf("first entry SQID %d CID %d %s", first.SQID, first.CID, StatusOutcome(first.Status))
		}
		s.Conform(obs, fmt.Sprintf("first entry SQID 0 CID %d %s", cqe.CID, StatusOutcome(cqe.Status)))
		s.Conform(order, "most recent first")
	})

	Check(Requirement{ID: "ADM-LOG-002", Section: secLogSMART, Keyword: Indicative, Binds: Controller,
		Text:  `SMART / Health Information log page: 512 bytes; Critical Warning bits 7:6 reserved`,
		Title: "the SMART / Health Information log reads as 512 bytes with reserved critical warning bits clear"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		b, err := getLogRaw(ctx, c, nvme.LogSMART, 0xFFFFFFFF, 0, nvme.SMARTLogSize)
		s.Conform(Outcome(err), "success")
		var l nvme.SMARTLog
		s.mustOK(l.Decode(b), "decode")
		s.expectThat(l.CriticalWarning&0xC0 == 0, "reserved critical warning bits set: %#x", l.CriticalWarning)
	})

	Check(Requirement{ID: "ADM-LOG-003", Section: secLogSMART, Keyword: Indicative, Binds: Controller,
		Text:  `Composite Temperature: contains the current composite temperature in Kelvins (0 K is no temperature; the field has no "not reported" value)`,
		Title: "the SMART / Health Information log reports a composite temperature (not 0 K)"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		b, err := getLogRaw(ctx, c, nvme.LogSMART, 0xFFFFFFFF, 0, nvme.SMARTLogSize)
		s.mustOK(err, "Get Log Page SMART")
		var l nvme.SMARTLog
		_ = l.Decode(b)
		obs := "composite temperature reported"
		if l.CompositeTemperature == 0 {
			obs = "composite temperature 0 K"
		}
		s.Conform(obs, "composite temperature reported")
	})

	Check(Requirement{ID: "ADM-LOG-004", Section: secLogSMART, Keyword: Indicative, Binds: Controller,
		Text:  `Host Read Commands: "Contains the number of read commands completed by the controller" (for the NVM command set, Compare and Read commands)`,
		Title: "the SMART / Health Information Host Read Commands count grows with reads"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		count := func() uint64 {
			b, err := getLogRaw(ctx, c, nvme.LogSMART, 0xFFFFFFFF, 0, nvme.SMARTLogSize)
			s.mustOK(err, "Get Log Page SMART")
			var l nvme.SMARTLog
			_ = l.Decode(b)
			return l.HostReadCommands
		}
		before := count()
		buf := make([]byte, ns.BS)
		for range 4 {
			s.readStep(q.Read(ctx, ns.ID, 0, 1, buf), "Read")
		}
		after := count()
		obs := "count grew"
		if after <= before {
			obs = "count did not grow"
		}
		s.Conform(obs, "count grew")
	})

	Check(Requirement{ID: "ADM-LOG-005", Section: secLogFirmware, Keyword: Indicative, Binds: Controller,
		Text:  `FR (Figure 312): "Contains the currently active firmware revision ... This is the same revision information that may be retrieved with the Get Log Page command"`,
		Title: "the Firmware Slot Information log names the active slot (1 to 7), which holds the revision FR reports"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		b, err := getLogRaw(ctx, c, nvme.LogFirmwareSlot, 0xFFFFFFFF, 0, nvme.FirmwareSlotLogSize)
		s.mustOK(err, "Get Log Page Firmware Slot Information")
		var l nvme.FirmwareSlotLog
		_ = l.Decode(b)
		slot := int(l.AFI & 7)
		rev := ""
		if slot >= 1 {
			rev = l.FRS[slot-1]
		}
		obs := fmt.Sprintf("active slot %d revision %q", slot, rev)
		fr := idCtrl(c).FR
		if slot >= 1 && rev == fr {
			s.Conform(obs, obs)
			return
		}
		s.Conform(obs, fmt.Sprintf("active slot 1..7 revision %q", fr))
	})

	Check(Requirement{ID: "ADM-LOG-006", Section: secLogChangedNS, Keyword: Indicative, Binds: Controller,
		Text:  `Changed Namespace List: a Namespace List of up to 1,024 NSIDs, or FFFFFFFFh first when more changed`,
		Title: "the Changed Namespace List log reads as 4096 bytes listing valid NSIDs or the overflow marker"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		b, err := getLogRaw(ctx, c, nvme.LogChangedNSList, 0xFFFFFFFF, 0, 4096)
		s.Conform(Outcome(err), "success")
		ids := nvme.DecodeChangedNSList(b)
		nn := idCtrl(c).NN
		for i, id := range ids {
			s.expectThat(id <= nn || (id == nvme.ChangedNSListOverflow && i == 0 && len(ids) == 1), "entry %d is NSID %#x (NN %d)", i, id, nn)
		}
	})

	Check(Requirement{ID: "ADM-LOG-007", Section: secLogEffects, Keyword: May, Binds: Controller,
		Text:  `Commands Supported and Effects: CSUPP set for each supported command (LPA bit 1 claims the log page)`,
		Title: "the Commands Supported and Effects log marks the mandatory admin commands and Read, Write, Flush supported"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		if idCtrl(c).LPA&nvme.LPACommandsEffects == 0 {
			s.Lacks("the Commands Supported and Effects log (LPA bit 1)")
		}
		b, err := getLogRaw(ctx, c, nvme.LogCommandsEffects, 0xFFFFFFFF, 0, nvme.CommandsEffectsLogSize)
		s.mustOK(err, "Get Log Page Commands Supported and Effects")
		var l nvme.CommandsEffectsLog
		_ = l.Decode(b)
		for _, op := range []uint8{nvme.AdminGetLogPage, nvme.AdminIdentify, nvme.AdminAbort, nvme.AdminSetFeatures,
			nvme.AdminGetFeatures, nvme.AdminAsyncEventReq, nvme.AdminKeepAlive} {
			s.expectThat(l.ACS[op]&nvme.CmdEffectsCSUPP != 0, "admin %s not marked supported", nvme.OpcodeName(true, op))
		}
		for _, op := range []uint8{nvme.CmdRead, nvme.CmdWrite, nvme.CmdFlush} {
			s.expectThat(l.IOCS[op]&nvme.CmdEffectsCSUPP != 0, "I/O %s not marked supported", nvme.OpcodeName(false, op))
		}
		s.expectThat(l.IOCS[nvme.CmdWrite]&nvme.CmdEffectsLBCC != 0, "Write not marked as changing logical block content")
	})

	Check(Requirement{ID: "ADM-LOG-008", Section: secLogEffects, Keyword: May, Binds: Controller,
		Text:  `CSUPP agrees with the optional commands ONCS claims`,
		Title: "the optional NVM commands ONCS claims are marked supported in the Commands Supported and Effects log"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		id := idCtrl(c)
		if id.LPA&nvme.LPACommandsEffects == 0 {
			s.Lacks("the Commands Supported and Effects log (LPA bit 1)")
		}
		b, err := getLogRaw(ctx, c, nvme.LogCommandsEffects, 0xFFFFFFFF, 0, nvme.CommandsEffectsLogSize)
		s.mustOK(err, "Get Log Page Commands Supported and Effects")
		var l nvme.CommandsEffectsLog
		_ = l.Decode(b)
		for bit, op := range map[uint16]uint8{nvme.ONCSCompare: nvme.CmdCompare, nvme.ONCSDSM: nvme.CmdDSM, nvme.ONCSWriteZeroes: nvme.CmdWriteZeroes} {
			claimed := id.ONCS&bit != 0
			marked := l.IOCS[op]&nvme.CmdEffectsCSUPP != 0
			s.expectThat(claimed == marked, "%s: ONCS says %v, effects log says %v", nvme.OpcodeName(false, op), claimed, marked)
		}
	})

	Check(Requirement{ID: "ADM-LOG-009", Section: secLogANA, Keyword: May, Binds: Controller,
		Text:  `ANA log page (CMIC bit 3): each ANA Group Descriptor lists its NSIDs and its ANA state`,
		Title: "the ANA log (CMIC bit 3) puts every active namespace in exactly one group, with a valid state and the ANAGRPID Identify Namespace reports"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		id := idCtrl(c)
		if id.CMIC&nvme.CMICANA == 0 {
			s.Lacks("ANA reporting (CMIC bit 3)")
		}
		b, err := getLogRaw(ctx, c, nvme.LogANA, 0, 0, 4096)
		s.mustOK(err, "Get Log Page ANA")
		l, err := nvme.DecodeANALog(b)
		s.mustOK(err, "decode the ANA log")
		s.expectThat(len(l.Groups) <= int(max(id.NANAGRPID, id.ANAGRPMAX)), "%d ANA groups, NANAGRPID %d", len(l.Groups), id.NANAGRPID)
		group := map[uint32]uint32{}
		for _, g := range l.Groups {
			s.expectThat(g.ANAGRPID >= 1 && g.ANAGRPID <= id.ANAGRPMAX, "ANAGRPID %d outside 1..ANAGRPMAX %d", g.ANAGRPID, id.ANAGRPMAX)
			switch g.State & 0xF {
			case nvme.ANAOptimized, nvme.ANANonOptimized, nvme.ANAInaccessible, nvme.ANAPersistentLoss, nvme.ANAChange:
			default:
				s.checkFail("group %d has ANA state %#x", g.ANAGRPID, g.State)
			}
			for _, n := range g.NSIDs {
				_, dup := group[n]
				s.expectThat(!dup, "NSID %d in two ANA groups", n)
				group[n] = g.ANAGRPID
			}
		}
		ids, err := c.ActiveNamespaces(ctx)
		s.mustOK(err, "Identify Active Namespace ID list")
		for _, n := range ids {
			g, ok := group[n]
			s.expectThat(ok, "active NSID %d in no ANA group", n)
			ns, err := c.IdentifyNamespace(ctx, n)
			s.mustOK(err, "Identify Namespace")
			s.expectThat(ns.ANAGRPID == g, "NSID %d: Identify ANAGRPID %d, ANA log group %d", n, ns.ANAGRPID, g)
		}
	})

	Check(Requirement{ID: "ADM-LOG-010", Section: secGetLog, Keyword: Indicative, Binds: Controller,
		Text:  `a Log Page Identifier that is not supported: Invalid Log Page (1/09h) or Invalid Field in Command (0/02h)`,
		Title: "Get Log Page of a reserved log identifier fails (Invalid Field in Command or Invalid Log Page)"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		_, err := getLogRaw(ctx, c, 0x6F, 0xFFFFFFFF, 0, 512)
		s.conformOneOf(Outcome(err), "status 0x1/0x9", "status 0x0/0x2")
	})

	Check(Requirement{ID: "ADM-LOG-011", Section: secGetLog, Keyword: May, Binds: Controller,
		Text:  `Log Page Offset (LPA bit 2, extended data): the read starts at that byte offset of the log page`,
		Title: "with extended data (LPA bit 2), a read at a Log Page Offset returns the same bytes as a whole read"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		if idCtrl(c).LPA&(1<<2) == 0 {
			s.Lacks("extended data for Get Log Page (LPA bit 2)")
		}
		lid, size := uint8(nvme.LogFirmwareSlot), nvme.FirmwareSlotLogSize
		if idCtrl(c).LPA&nvme.LPACommandsEffects != 0 {
			lid, size = nvme.LogCommandsEffects, nvme.CommandsEffectsLogSize
		}
		full, err := getLogRaw(ctx, c, lid, 0xFFFFFFFF, 0, size)
		s.mustOK(err, "Get Log Page")
		part, err := getLogRaw(ctx, c, lid, 0xFFFFFFFF, uint64(size/2), size/4)
		s.Conform(Outcome(err), "success")
		obs := "same bytes"
		if d := firstDiff(part, full[size/2:size/2+size/4]); d != "" {
			obs = "different bytes"
			AddReportEntry("detail", fmt.Sprintf("%s: log %#x at offset %d: %s", s.Req.ID, lid, size/2, d))
		}
		s.Conform(obs, "same bytes")
	})

	// Features.

	Check(Requirement{ID: "ADM-FEAT-001", Section: secFeatures, Keyword: Indicative, Binds: Controller,
		Text:  `Number of Queues (Feature Identifier 07h): Dword 0 reports NSQA and NCQA allocated, 0's based`,
		Title: "Get Features Number of Queues reports at least one I/O submission and completion queue allocated"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		dw0, err := c.GetFeatures(ctx, nvme.FeatNumQueues, 0, nvme.SelCurrent, 0, nil)
		s.Conform(Outcome(err), "success")
		nsq, ncq := nvme.DecodeNumQueues(dw0)
		s.expectThat(nsq >= 1 && ncq >= 1 && nsq != 0 && ncq != 0, "NSQA %d NCQA %d (1's based)", nsq, ncq)
	})

	Check(Requirement{ID: "ADM-FEAT-002", Section: secFeatKATO, Keyword: Indicative, Binds: Controller,
		Text:  `KATO: "The controller rounds up the value specified to the granularity indicated in the KAS field"; Connect: "the controller shall set the KATO field in the Keep Alive Timer feature"`,
		Title: "Get Features Keep Alive Timer returns the KATO the Connect command set, rounded up to the KAS granularity"}, func(ctx context.Context, s *Spec) {
		const req = 5 * time.Second
		o := s.Options()
		o.NrIOQueues = -1
		o.KATO = req
		c := s.Connect(ctx, o)
		g := kasGranule(idCtrl(c))
		if g == 0 {
			s.Lacks("the Keep Alive Timer feature (KAS 0; ADM-ID-013 judges that)")
		}
		got := s.getKATO(ctx, c)
		obs, ok := expectedKATO(got, req, g)
		if !ok {
			s.Conform(obs, fmt.Sprintf("KATO %d ms", roundUpKATO(req, g).Milliseconds()))
			return
		}
		AddReportEntry("observed", s.Req.ID+": "+obs)
		if got == roundUpKATO(req, g) {
			return
		}
		// Raised to a minimum: a request above that minimum must then be
		// kept (rounded), or the controller ignored the Connect KATO.
		above := got + 2*g
		o.KATO = above
		c2 := s.Connect(ctx, o)
		got2 := s.getKATO(ctx, c2)
		obs2, _ := expectedKATO(got2, above, g)
		s.Conform(obs2, fmt.Sprintf("KATO %d ms: %d ms rounded up to the KAS granularity of %d ms", roundUpKATO(above, g).Milliseconds(), above.Milliseconds(), g.Milliseconds()))
	})

	Check(Requirement{ID: "ADM-FEAT-003", Section: secFeatKATO, Keyword: Indicative, Binds: Controller,
		Text:  `KATO: "The controller rounds up the value specified to the granularity indicated in the KAS field" (3.9.1: raised to the implementation's minimum)`,
		Title: "Set Features Keep Alive Timer takes effect: Get Features returns the new KATO rounded up to the KAS granularity"}, func(ctx context.Context, s *Spec) {
		const first, req = 5 * time.Second, 6 * time.Second
		o := s.Options()
		o.NrIOQueues = -1
		o.KATO = first
		c := s.Connect(ctx, o)
		g := kasGranule(idCtrl(c))
		if g == 0 {
			s.Lacks("the Keep Alive Timer feature (KAS 0; ADM-ID-013 judges that)")
		}
		// What the Connect KATO became bounds the controller's minimum:
		// if it was raised, that is the minimum; else the minimum is no
		// more than the first request rounded.
		floor := s.getKATO(ctx, c)
		_, err := c.SetFeatures(ctx, nvme.FeatKeepAliveTimer, 0, uint32(req/time.Millisecond), false, nil)
		s.Conform(Outcome(err), "success")
		got := s.getKATO(ctx, c)
		want := max(roundUpKATO(req, g), floor)
		obs, _ := expectedKATO(got, req, g)
		if got == want {
			AddReportEntry("observed", s.Req.ID+": "+obs)
			return
		}
		s.Conform(obs, fmt.Sprintf("KATO %d ms", want.Milliseconds()))
	})

	Check(Requirement{ID: "ADM-FEAT-004", Section: secFeatures, Keyword: Indicative, Binds: Controller,
		Text:  `Asynchronous Event Configuration (Feature Identifier 0Bh): the notices enabled are those set, for the events OAES claims`,
		Title: "Asynchronous Event Configuration set to the notices OAES claims reads back the same"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		aec := idCtrl(c).OAES & (nvme.AECNamespaceAttr | nvme.AECFirmwareAct | nvme.AECANAChange)
		for _, v := range []uint32{0, aec} {
			_, err := c.SetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, v, false, nil)
			s.mustOK(err, fmt.Sprintf("Set Features Asynchronous Event Configuration %#x", v))
			dw0, err := c.GetFeatures(ctx, nvme.FeatAsyncEventConfig, 0, nvme.SelCurrent, 0, nil)
			s.mustOK(err, "Get Features Asynchronous Event Configuration")
			s.Conform(fmt.Sprintf("AEC %#x", dw0&(nvme.AECNamespaceAttr|nvme.AECFirmwareAct|nvme.AECANAChange)), fmt.Sprintf("AEC %#x", v))
		}
	})

	Check(Requirement{ID: "ADM-FEAT-005", Section: secFeatures, Keyword: Indicative, Binds: Controller,
		Text:  `Volatile Write Cache (Feature Identifier 06h): supported when VWC bit 0 says a volatile write cache is present`,
		Title: "Get Features Volatile Write Cache agrees with VWC: it works when a cache is present and never reports one enabled otherwise"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		present := idCtrl(c).VWC&nvme.VWCPresent != 0
		dw0, err := c.GetFeatures(ctx, nvme.FeatVolatileWC, 0, nvme.SelCurrent, 0, nil)
		if present {
			s.Conform(Outcome(err), "success")
			return
		}
		s.expectThat(err != nil || dw0&1 == 0, "no volatile write cache (VWC bit 0 clear) but Get Features reports it enabled")
	})

	Check(Requirement{ID: "ADM-FEAT-006", Section: secGetFeatures, Keyword: Indicative, Binds: Controller,
		Text:  `a reserved Feature Identifier: Invalid Field in Command (Figure 102, 02h: "A reserved coded value or an unsupported value in a defined field")`,
		Title: "Get Features of a reserved feature identifier fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		_, err := c.GetFeatures(ctx, 0x00, 0, nvme.SelCurrent, 0, nil)
		s.Conform(Outcome(err), "status 0x0/0x2")
	})

	// Keep alive.

	Check(Requirement{ID: "ADM-KA-001", Section: secKeepAlive, Keyword: Shall, Binds: Controller,
		Text:  `"If the Keep Alive Timer feature is supported (i.e., the KAS field is set to a non-zero value), the controller shall support the Keep Alive command"`,
		Title: "the Keep Alive command completes successfully"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		if idCtrl(c).KAS == 0 {
			s.Lacks("the Keep Alive Timer feature (KAS 0; ADM-ID-013 judges that)")
		}
		_, err := c.Admin().Exec(ctx, nvme.KeepAliveCmd(), nil, initiator.NoData)
		s.Conform(Outcome(err), "success")
	})

	Check(Requirement{ID: "ADM-KA-002", Section: secKeepAliveCmd, Keyword: Shall, Binds: Controller,
		Text:  `"The controller shall expire the Keep Alive Timer if ... KATT has elapsed"; cleanup (3.9.5) "within the time specified by the CQT field"; Traffic Based: "up to 2 * KATT" (3.9.4.1)`,
		Title: "an enabled controller that hears nothing for its Keep Alive Timeout ends the association, not before KATT and within 2 x KATT plus CQT"}, func(ctx context.Context, s *Spec) {
		r := s.Raw(ctx, tcp.ICReq{})
		_, err := s.connectRaw(r, s.Target.Config.SubNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, time.Second)
		s.mustOK(err, "admin Connect with KATO 1 s")
		enabling := time.Now() // the timer becomes active after this
		s.enableRaw(ctx, r)
		id := s.rawIdentifyCtrl(r)
		if id.KAS == 0 {
			s.Lacks("the Keep Alive Timer feature (KAS 0; ADM-ID-013 judges that)")
		}
		// KATT is the 1 s asked for rounded up to the KAS granularity, or
		// the controller's minimum (ADM-FEAT-002 judges which).
		katt := max(s.rawKATO(r), time.Second)
		quiet := time.Now()
		// A Command Based controller expires the timer once KATT has
		// elapsed; a Traffic Based one "may require up to 2 * KATT"
		// (3.9.4.1), and one that looks at its timer once per KATT takes
		// as long. Cleanup follows "within the time specified by the CQT
		// field" (3.9.5). The wait allows all of that, and a little more
		// for the network; lateness within it is reported, not failed.
		cqt := time.Duration(id.CQT) * time.Millisecond
		limit := 2*katt + cqt + 2*time.Second
		if limit > maxCheckWait {
			s.Lacks(fmt.Sprintf("a Keep Alive Timeout this check can wait for (KATT %v needs up to %v, more than %v)", katt, limit, maxCheckWait))
		}
		_, _, _, err = r.Recv(limit)
		var ne net.Error
		obs := "association ended"
		switch {
		case err == nil:
			// A C2HTermReq or anything else first: the end must follow.
			if _, _, _, err2 := r.Recv(2 * time.Second); err2 == nil || errors.As(err2, &ne) && ne.Timeout() {
				obs = "association alive"
			}
		case errors.As(err, &ne) && ne.Timeout():
			obs = fmt.Sprintf("association alive after %v (KATT %v)", limit, katt)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
		default:
			obs = "error " + err.Error()
		}
		if obs == "association ended" {
			// The timer started no earlier than enabling: ending before
			// KATT has passed since then ends it before the timer expired.
			if early := time.Since(enabling); early < katt-100*time.Millisecond {
				obs = fmt.Sprintf("association ended %v after enabling, before KATT %v", early.Round(time.Millisecond), katt)
			} else {
				took := time.Since(quiet).Round(time.Millisecond)
				AddReportEntry("observed", fmt.Sprintf("%s: association ended %v after the last command (KATT %v, CQT %v, TBKAS %v)", s.Req.ID, took, katt, cqt, id.CTRATT&ctrattTBKAS != 0))
			}
		}
		s.Conform(obs, "association ended")
	})

	Check(Requirement{ID: "ADM-KA-003", Section: secKeepAliveCmd, Keyword: Shall, Binds: Controller,
		Text:  `"The controller shall restart the Keep Alive Timer if the Keep Alive Timer is active, and ... a Keep Alive command completes successfully"`,
		Title: "Keep Alive commands sent within KATT keep the association alive past KATT"}, func(ctx context.Context, s *Spec) {
		r := s.Raw(ctx, tcp.ICReq{})
		_, err := s.connectRaw(r, s.Target.Config.SubNQN, 0, nvme.CNTLIDDynamic, initiator.AdminQueueSize-1, 0, time.Second)
		s.mustOK(err, "admin Connect with KATO 1 s")
		s.enableRaw(ctx, r)
		katt := max(s.rawKATO(r), time.Second)
		// Run past one and a half KATT, a Keep Alive every KATT/4 (the
		// host's own guidance is KATT/2, "to account for delays").
		span := katt + katt/2
		if span > maxCheckWait {
			s.Lacks(fmt.Sprintf("a Keep Alive Timeout this check can outlast (KATT %v)", katt))
		}
		var last error
		for end := time.Now().Add(span); time.Now().Before(end); {
			time.Sleep(katt / 4)
			if _, _, last = r.Command(nvme.KeepAliveCmd(), nil); last != nil {
				break
			}
		}
		s.Conform(Outcome(last), "success")
	})

	// Asynchronous events, Abort.

	Check(Requirement{ID: "ADM-AER-001", Section: secAER, Keyword: Indicative, Binds: Controller,
		Text:  `more than AERL+1 outstanding requests: Asynchronous Event Request Limit Exceeded (1/05h, Figure 103)`,
		Title: "an Asynchronous Event Request beyond AERL+1 outstanding fails with Asynchronous Event Request Limit Exceeded"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		n := int(idCtrl(c).AERL) + 1
		if n+2 > c.Admin().Depth() {
			s.Lacks(fmt.Sprintf("an AERL that fits the admin queue (AERL %d)", n-1))
		}
		for range n {
			r := &initiator.Request{SQE: nvme.AsyncEventRequestCmd(), Timeout: -1, Done: func(*initiator.Request) {}}
			s.mustOK(c.Admin().Submit(r), "submit Asynchronous Event Request")
		}
		// Keep Alive behind them makes sure they all arrived first.
		_, err := c.Admin().Exec(ctx, nvme.KeepAliveCmd(), nil, initiator.NoData)
		s.mustOK(err, "Keep Alive")
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = c.Admin().Exec(actx, nvme.AsyncEventRequestCmd(), nil, initiator.NoData)
		obs := Outcome(err)
		if errors.Is(err, context.DeadlineExceeded) {
			obs = "accepted (outstanding)"
		}
		s.Conform(obs, "status 0x1/0x5")
	})

	Check(Requirement{ID: "ADM-AER-002", Section: secAER, Keyword: May, Binds: Controller,
		Text:  `Namespace Attribute Notices (OAES bit 8): a Namespace Attribute Changed event, and the Changed Namespace List names the namespace`,
		Title: "adding a namespace raises a Namespace Attribute Changed event (OAES bit 8) and the Changed Namespace List names it"}, func(ctx context.Context, s *Spec) {
		c := s.adminController(ctx)
		if idCtrl(c).OAES&nvme.AECNamespaceAttr == 0 {
			s.Lacks("Namespace Attribute Notices (OAES bit 8)")
		}
		s.RequireControl("add a namespace")
		nsid := s.inactiveNSID(ctx, c)
		// Clear what earlier changes left in the list.
		_, _ = getLogRaw(ctx, c, nvme.LogChangedNSList, 0xFFFFFFFF, 0, 4096)
		ch := c.AsyncEvents()
		sub := s.Target.Config.SubNQN
		id := strconv.FormatUint(uint64(nsid), 10)
		s.act(ctx, "add a namespace", Action{Verb: "add-namespace", Args: map[string]string{"subnqn": sub, "nsid": id, "size": "16MiB"}},
			&Action{Verb: "remove-namespace", Args: map[string]string{"subnqn": sub, "nsid": id}})
		ev, err := waitEvent(ctx, ch, 5*time.Second)
		obs := fmt.Sprintf("AEN %#08x", ev)
		if err != nil {
			obs = err.Error()
		}
		s.Conform(obs, fmt.Sprintf("AEN %#08x", nvme.AEN(nvme.AENTypeNotice, nvme.AENNoticeNSChanged, nvme.LogChangedNSList)))
		b, err := getLogRaw(ctx, c, nvme.LogChangedNSList, 0xFFFFFFFF, 0, 4096)
		s.mustOK(err, "Get Log Page Changed Namespace List")
		ids := nvme.DecodeChangedNSList(b)
		s.expectThat(slices.Contains(ids, nsid) || slices.Equal(ids, []uint32{nvme.ChangedNSListOverflow}), "Changed Namespace List %v does not name NSID %d", ids, nsid)
	})

	Check(Requirement{ID: "ADM-ABRT-001", Section: secAbort + ".2", Keyword: Indicative, Binds: Controller,
		Text:  `IANP (Dword 0 bit 0): "If this bit is set to '1', then an immediate abort was not performed ... for any reason (e.g., ... the requested command to abort was not found)"`,
		Title: "Abort of a command not outstanding completes successfully (DW0 bit 0 says not aborted)"}, func(ctx context.Context, s *Spec) {
		c, _ := s.ioController(ctx)
		cqe, err := c.Admin().Exec(ctx, nvme.AbortCmd(1, 0x7FFF), nil, initiator.NoData)
		s.Conform(Outcome(err), "success")
		s.expectThat(cqe.DW0&1 == 1, "Abort of an unknown CID says it aborted a command (DW0 %#x)", cqe.DW0)
	})
})
