package suites

// The io area: NVM command set I/O over an NVMe/TCP I/O queue — data
// integrity through in-capsule data and R2T, queue depth, LBA range and
// namespace checks, the optional commands ONCS and FUSES claim, SGL
// validation and SQ head reporting.

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// writeRead writes n blocks of fresh data at a random LBA, reads them back
// and fails on any difference.
func (s *Spec) writeRead(ctx context.Context, q *initiator.Queue, ns nsInfo, nlb uint32) {
	GinkgoHelper()
	slba := randomLBA(ns, nlb)
	data := randomData(int(nlb * ns.BS))
	s.mustOK(q.Write(ctx, ns.ID, slba, nlb, data), fmt.Sprintf("Write of %d blocks at LBA %d", nlb, slba))
	got := make([]byte, len(data))
	s.mustOK(q.Read(ctx, ns.ID, slba, nlb, got), fmt.Sprintf("Read of %d blocks at LBA %d", nlb, slba))
	if d := firstDiff(got, data); d != "" {
		s.checkFail("read back %d bytes written at LBA %d: %s", len(data), slba, d)
	}
}

// fusedCompareWrite sends a fused Compare and Write and returns both
// commands' results.
func fusedCompareWrite(ctx context.Context, q *initiator.Queue, nsid uint32, slba uint64, nlb uint32, cmp, data []byte) (cmpErr, wErr error, err error) {
	done := make(chan *initiator.Request, 2)
	c := &initiator.Request{SQE: nvme.CompareCmd(nsid, slba, nlb), Data: cmp, Dir: initiator.ToController}
	c.SQE.Flags |= nvme.FuseFirst
	w := &initiator.Request{SQE: nvme.WriteCmd(nsid, slba, nlb), Data: data, Dir: initiator.ToController}
	w.SQE.Flags |= nvme.FuseSecond
	c.Done = func(r *initiator.Request) { done <- r }
	w.Done = c.Done
	if err := q.SubmitFused(c, w); err != nil {
		return nil, nil, err
	}
	for range 2 {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	return c.Err, w.Err, nil
}

var _ = Describe("io", Label("io"), func() {
	Check(Requirement{ID: "IO-RW-001", Section: refNVMWrite, Level: Mandatory,
		Title: "data written with in-capsule Write commands reads back unchanged"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.writableNS(ctx, c)
		s.writeRead(ctx, q, ns, 1)
		if inl := q.InlineDataSize(); inl >= int(2*ns.BS) {
			s.writeRead(ctx, q, ns, uint32(inl)/ns.BS)
		}
	})

	Check(Requirement{ID: "IO-RW-002", Section: refNVMWrite, Level: Mandatory,
		Title: "data written through R2T and H2CData, up to MDTS, reads back unchanged"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.writableNS(ctx, c)
		limit := uint64(c.MaxTransferSize())
		if limit == 0 {
			limit = 1 << 20
		}
		limit = min(limit, 65536*uint64(ns.BS), ns.NLBA*uint64(ns.BS))
		sizes := []uint64{uint64(q.InlineDataSize()) + uint64(ns.BS), 64 << 10, 128<<10 + uint64(ns.BS), limit}
		for _, n := range sizes {
			n -= n % uint64(ns.BS)
			if n == 0 || n > limit {
				continue
			}
			s.writeRead(ctx, q, ns, uint32(n/uint64(ns.BS)))
		}
	})

	Check(Requirement{ID: "IO-RW-003", Section: refBaseFlush, Level: Mandatory,
		Title: "Flush of an active namespace completes successfully"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		s.Conform(Outcome(q.Flush(ctx, ns.ID)), "success")
	})

	Check(Requirement{ID: "IO-RW-004", Section: refBaseSQFlow, Level: Mandatory,
		Title: "32 commands in flight on one queue, with distinct CIDs, all complete with the right data"}, func(ctx context.Context, s *Spec) {
		o := s.Options()
		o.QueueSize = 33 // 32 commands in flight
		c := s.Connect(ctx, o)
		if len(c.IOQueues()) == 0 {
			s.checkFail("the controller granted no I/O queue")
		}
		q := c.IOQueues()[0]
		ns := s.writableNS(ctx, c)
		depth := min(q.Depth(), 32)
		if depth < 32 {
			AddReportEntry("observed", fmt.Sprintf("%s: queue depth limited to %d by the controller", s.Req.ID, depth))
		}
		const nlb = 8
		if ns.NLBA < uint64(depth*nlb) {
			s.Lacks("a namespace of 256 blocks")
		}
		base := randomLBA(ns, uint32(depth*nlb))
		want := make([][]byte, depth)
		got := make([][]byte, depth)
		run := func(write bool) {
			done := make(chan *initiator.Request, depth)
			reqs := make([]*initiator.Request, depth)
			for i := range depth {
				slba := base + uint64(i*nlb)
				r := &initiator.Request{Done: func(r *initiator.Request) { done <- r }, Tag: i}
				if write {
					want[i] = randomData(nlb * int(ns.BS))
					r.SQE, r.Data, r.Dir = nvme.WriteCmd(ns.ID, slba, nlb), want[i], initiator.ToController
				} else {
					got[i] = make([]byte, nlb*int(ns.BS))
					r.SQE, r.Data, r.Dir = nvme.ReadCmd(ns.ID, slba, nlb), got[i], initiator.FromController
				}
				reqs[i] = r
			}
			for _, r := range reqs {
				s.mustOK(q.Submit(r), "submit")
			}
			for range depth {
				select {
				case r := <-done:
					s.mustOK(r.Err, fmt.Sprintf("command %d of %d in flight", r.Tag.(int), depth))
				case <-ctx.Done():
					s.checkFail("%d commands in flight did not all complete: %v", depth, ctx.Err())
				}
			}
		}
		run(true)
		run(false)
		for i := range depth {
			if d := firstDiff(got[i], want[i]); d != "" {
				s.checkFail("command %d of %d in flight read back other data: %s", i, depth, d)
			}
		}
	})

	Check(Requirement{ID: "IO-RW-005", Section: refNVMWrite, Level: Mandatory,
		Title: "a Write with Force Unit Access completes and its data reads back"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.writableNS(ctx, c)
		slba := randomLBA(ns, 1)
		data := randomData(int(ns.BS))
		sqe := nvme.WriteCmd(ns.ID, slba, 1)
		nvme.SetFUA(&sqe)
		_, err := q.Exec(ctx, sqe, data, initiator.ToController)
		s.Conform(Outcome(err), "success")
		got := make([]byte, ns.BS)
		s.mustOK(q.Read(ctx, ns.ID, slba, 1, got), "Read")
		s.expectThat(firstDiff(got, data) == "", "FUA write did not read back: %s", firstDiff(got, data))
	})

	Check(Requirement{ID: "IO-RW-006", Section: refNVMRead, Level: Mandatory,
		Title: "a one-block Read of the first and of the last LBA transfers exactly one block"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		for _, slba := range []uint64{0, ns.NLBA - 1} {
			buf := make([]byte, ns.BS)
			s.Conform(Outcome(q.Read(ctx, ns.ID, slba, 1, buf)), "success")
		}
	})

	Check(Requirement{ID: "IO-ERR-001", Section: refNVMRead, Level: Mandatory,
		Title: "a Read past the end of the namespace fails with LBA Out of Range"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		buf := make([]byte, 2*ns.BS)
		s.Conform(Outcome(q.Read(ctx, ns.ID, ns.NLBA-1, 2, buf)), "status 0x0/0x80")
		// The queue must survive the error.
		s.mustOK(q.Read(ctx, ns.ID, 0, 1, buf[:ns.BS]), "Read after the failed Read")
	})

	Check(Requirement{ID: "IO-ERR-002", Section: refNVMWrite, Level: Mandatory,
		Title: "a Write past the end of the namespace fails with LBA Out of Range"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.writableNS(ctx, c)
		s.Conform(Outcome(q.Write(ctx, ns.ID, ns.NLBA-1, 2, randomData(int(2*ns.BS)))), "status 0x0/0x80")
	})

	Check(Requirement{ID: "IO-ERR-003", Section: refIDCtrl, Level: Mandatory,
		Title: "a Read longer than MDTS fails with Invalid Field in Command"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		mts := c.MaxTransferSize()
		if mts == 0 {
			s.Lacks("an MDTS limit")
		}
		nlb := uint32(2 * mts / int(ns.BS))
		if nlb > 65536 || uint64(nlb) > ns.NLBA {
			s.Lacks("an MDTS small enough to exceed with one command")
		}
		buf := make([]byte, int(nlb)*int(ns.BS))
		s.Conform(Outcome(q.Read(ctx, ns.ID, 0, nlb, buf)), "status 0x0/0x2")
	})

	Check(Requirement{ID: "IO-ERR-004", Section: refBaseNSID, Level: Mandatory,
		Title: "a Read of an inactive NSID fails with Invalid Namespace or Format"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		nsid := s.inactiveNSID(ctx, c)
		s.Conform(Outcome(q.Read(ctx, nsid, 0, 1, make([]byte, 512))), "status 0x0/0xb")
	})

	Check(Requirement{ID: "IO-ERR-005", Section: refBaseNSID, Level: Mandatory,
		Title: "a Read with NSID 0 fails with Invalid Namespace or Format"}, func(ctx context.Context, s *Spec) {
		_, q := s.ioController(ctx)
		s.Conform(Outcome(q.Read(ctx, 0, 0, 1, make([]byte, 512))), "status 0x0/0xb")
	})

	Check(Requirement{ID: "IO-ERR-006", Section: refBaseStatus, Level: Mandatory,
		Title: "an unsupported I/O opcode fails with Invalid Command Opcode"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		_, err := q.Exec(ctx, nvme.SQE{Opcode: 0x7E, NSID: ns.ID}, nil, initiator.NoData)
		s.Conform(Outcome(err), "status 0x0/0x1")
	})

	Check(Requirement{ID: "IO-WZ-001", Section: refNVMWriteZeroes, Level: Optional,
		Title: "Write Zeroes (ONCS bit 3) makes the blocks read as zeroes"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		if c.IdentifyData().ONCS&nvme.ONCSWriteZeroes == 0 {
			s.Lacks("Write Zeroes (ONCS bit 3)")
		}
		ns := s.writableNS(ctx, c)
		const nlb = 8
		slba := randomLBA(ns, nlb)
		s.mustOK(q.Write(ctx, ns.ID, slba, nlb, randomData(nlb*int(ns.BS))), "Write")
		s.Conform(Outcome(q.WriteZeroes(ctx, ns.ID, slba, nlb, false)), "success")
		got := make([]byte, nlb*ns.BS)
		s.mustOK(q.Read(ctx, ns.ID, slba, nlb, got), "Read")
		s.expectThat(allBytes(got, 0), "blocks read back non-zero after Write Zeroes")
	})

	Check(Requirement{ID: "IO-DSM-001", Section: refNVMDSM, Level: Optional,
		Title: "Dataset Management deallocate (ONCS bit 2) succeeds and deallocated blocks read as DLFEAT says"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		if c.IdentifyData().ONCS&nvme.ONCSDSM == 0 {
			s.Lacks("Dataset Management (ONCS bit 2)")
		}
		ns := s.writableNS(ctx, c)
		const nlb = 8
		slba := randomLBA(ns, nlb)
		s.mustOK(q.Write(ctx, ns.ID, slba, nlb, randomData(nlb*int(ns.BS))), "Write")
		s.Conform(Outcome(q.Deallocate(ctx, ns.ID, []nvme.DSMRange{{NLB: nlb, SLBA: slba}})), "success")
		got := make([]byte, nlb*ns.BS)
		s.mustOK(q.Read(ctx, ns.ID, slba, nlb, got), "Read of deallocated blocks")
		switch ns.Ident.DLFEAT & 7 {
		case 1:
			s.expectThat(allBytes(got, 0), "DLFEAT says deallocated blocks read as 00h, they did not")
		case 2:
			s.expectThat(allBytes(got, 0xFF), "DLFEAT says deallocated blocks read as FFh, they did not")
		}
	})

	Check(Requirement{ID: "IO-CMP-001", Section: refNVMCompare, Level: Optional,
		Title: "Compare (ONCS bit 0) of matching data succeeds"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		if c.IdentifyData().ONCS&nvme.ONCSCompare == 0 {
			s.Lacks("Compare (ONCS bit 0)")
		}
		ns := s.writableNS(ctx, c)
		slba := randomLBA(ns, 2)
		data := randomData(int(2 * ns.BS))
		s.mustOK(q.Write(ctx, ns.ID, slba, 2, data), "Write")
		s.Conform(Outcome(q.Compare(ctx, ns.ID, slba, 2, data)), "success")
	})

	Check(Requirement{ID: "IO-CMP-002", Section: refNVMCompare, Level: Optional,
		Title: "Compare (ONCS bit 0) of different data fails with Compare Failure"}, func(ctx context.Context, s *Spec) {
		c, q := s.ioController(ctx)
		if c.IdentifyData().ONCS&nvme.ONCSCompare == 0 {
			s.Lacks("Compare (ONCS bit 0)")
		}
		ns := s.writableNS(ctx, c)
		slba := randomLBA(ns, 2)
		data := randomData(int(2 * ns.BS))
		s.mustOK(q.Write(ctx, ns.ID, slba, 2, data), "Write")
		other := append([]byte(nil), data...)
		other[len(other)-1] ^= 0xFF
		s.Conform(Outcome(q.Compare(ctx, ns.ID, slba, 2, other)), "status 0x2/0x85")
	})

	Check(Requirement{ID: "IO-FUSE-001", Section: refBaseFused, Level: Optional,
		Title: "a fused Compare and Write (FUSES bit 0) whose compare matches writes the data"}, func(ctx context.Context, s *Spec) {
		q, ns, slba, old := s.fusedSetup(ctx)
		nw := randomData(int(ns.BS))
		cerr, werr, err := fusedCompareWrite(ctx, q, ns.ID, slba, 1, old, nw)
		s.mustOK(err, "fused Compare and Write")
		s.Conform(fmt.Sprintf("compare %s, write %s", Outcome(cerr), Outcome(werr)), "compare success, write success")
		got := make([]byte, ns.BS)
		s.mustOK(q.Read(ctx, ns.ID, slba, 1, got), "Read")
		s.expectThat(firstDiff(got, nw) == "", "the fused write's data did not read back: %s", firstDiff(got, nw))
	})

	Check(Requirement{ID: "IO-FUSE-002", Section: refBaseFused, Level: Optional,
		Title: "a fused Compare and Write whose compare fails aborts the write with Aborted due to Failed Fused Command"}, func(ctx context.Context, s *Spec) {
		q, ns, slba, old := s.fusedSetup(ctx)
		cmp, nw := randomData(int(ns.BS)), randomData(int(ns.BS))
		cerr, werr, err := fusedCompareWrite(ctx, q, ns.ID, slba, 1, cmp, nw)
		s.mustOK(err, "fused Compare and Write")
		s.Conform(fmt.Sprintf("compare %s, write %s", Outcome(cerr), Outcome(werr)), "compare status 0x2/0x85, write status 0x0/0x9")
		got := make([]byte, ns.BS)
		s.mustOK(q.Read(ctx, ns.ID, slba, 1, got), "Read")
		s.expectThat(firstDiff(got, old) == "", "the aborted fused write changed the data: %s", firstDiff(got, old))
	})

	Check(Requirement{ID: "IO-FUSE-003", Section: refBaseFused, Level: Optional,
		Title: "a second fused command without its first fails with Aborted due to Missing Fused Command"}, func(ctx context.Context, s *Spec) {
		q, ns, slba, old := s.fusedSetup(ctx)
		sqe := nvme.WriteCmd(ns.ID, slba, 1)
		sqe.Flags |= nvme.FuseSecond
		_, err := q.Exec(ctx, sqe, randomData(int(ns.BS)), initiator.ToController)
		s.Conform(Outcome(err), "status 0x0/0xa")
		got := make([]byte, ns.BS)
		s.mustOK(q.Read(ctx, ns.ID, slba, 1, got), "Read")
		s.expectThat(firstDiff(got, old) == "", "the lone second fused command wrote data: %s", firstDiff(got, old))
	})

	Check(Requirement{ID: "IO-SGL-001", Section: refTCPCapsuleCmd, Level: Mandatory,
		Title: "a Write whose in-capsule data is longer than its SGL says fails with Data SGL Length Invalid"}, func(ctx context.Context, s *Spec) {
		c, _ := s.ioController(ctx)
		ns := s.writableNS(ctx, c)
		icd := int(c.IdentifyData().IOCCSZ)*16 - nvme.SQESize
		if icd < int(ns.BS)+16 {
			s.Lacks(fmt.Sprintf("in-capsule data of %d bytes", ns.BS+16))
		}
		a := s.rawIOQueue(ctx, 31)
		sqe := nvme.WriteCmd(ns.ID, randomLBA(ns, 1), 1)
		sqe.DPTR = nvme.SGLDescriptor{Length: ns.BS, Type: nvme.SGLDataBlockOffset}
		_, _, err := a.IO.Command(sqe, randomData(int(ns.BS)+16))
		s.Conform(Outcome(err), "status 0x0/0xf")
	})

	Check(Requirement{ID: "IO-SGL-002", Section: refNVMRead, Level: Mandatory,
		Title: "a Read whose SGL describes less data than NLB blocks fails with Data SGL Length Invalid"}, func(ctx context.Context, s *Spec) {
		c, _ := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		a := s.rawIOQueue(ctx, 31)
		sqe := nvme.ReadCmd(ns.ID, 0, 2)
		sqe.DPTR = nvme.SGLDescriptor{Length: ns.BS, Type: nvme.SGLTransportDataBlock}
		_, _, err := a.IO.Command(sqe, nil)
		s.Conform(Outcome(err), "status 0x0/0xf")
	})

	Check(Requirement{ID: "IO-SGL-003", Section: refNVMRead, Level: Mandatory,
		Title: "a Read whose SGL describes more data than NLB blocks fails with Data SGL Length Invalid unless SGLS bit 18 allows it"}, func(ctx context.Context, s *Spec) {
		c, _ := s.ioController(ctx)
		if c.IdentifyData().SGLS&(1<<18) != 0 {
			s.Lacks("a limit on SGL length (SGLS bit 18 allows longer SGLs)")
		}
		ns := s.readableNS(ctx, c)
		a := s.rawIOQueue(ctx, 31)
		sqe := nvme.ReadCmd(ns.ID, 0, 1)
		sqe.DPTR = nvme.SGLDescriptor{Length: 2 * ns.BS, Type: nvme.SGLTransportDataBlock}
		_, _, err := a.IO.Command(sqe, nil)
		s.Conform(Outcome(err), "status 0x0/0xf")
	})

	Check(Requirement{ID: "IO-SQHD-001", Section: refBaseSQFlow, Level: Mandatory,
		Title: "with SQ flow control, each response's SQHD advances by one per command, wrapping at the queue size"}, func(ctx context.Context, s *Spec) {
		c, _ := s.ioController(ctx)
		ns := s.readableNS(ctx, c)
		const size = 8 // SQSIZE 7
		a := s.rawIOQueue(ctx, size-1)
		var prev int = -1
		for i := range 3 * size {
			cqe, _, err := a.IO.Command(nvme.FlushCmd(ns.ID), nil)
			s.mustOK(err, "Flush")
			if prev >= 0 {
				want := (prev + 1) % size
				if int(cqe.SQHD) != want {
					s.Conform(fmt.Sprintf("SQHD %d after %d (command %d)", cqe.SQHD, prev, i), fmt.Sprintf("SQHD %d after %d (command %d)", want, prev, i))
				}
			}
			prev = int(cqe.SQHD)
			s.expectThat(prev < size, "SQHD %d beyond the queue size %d", prev, size)
		}
	})
})

// fusedSetup is where every fused-command check starts: an I/O controller
// that claims Compare and Write (else the check is skipped), and one block
// of the writable namespace holding fresh random data, which it returns.
func (s *Spec) fusedSetup(ctx context.Context) (*initiator.Queue, nsInfo, uint64, []byte) {
	GinkgoHelper()
	c, q := s.ioController(ctx)
	if c.IdentifyData().FUSES&1 == 0 {
		s.Lacks("Compare and Write (FUSES bit 0)")
	}
	ns := s.writableNS(ctx, c)
	slba := randomLBA(ns, 1)
	old := randomData(int(ns.BS))
	s.mustOK(q.Write(ctx, ns.ID, slba, 1, old), "Write")
	return q, ns, slba, old
}
