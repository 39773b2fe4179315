package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// Op is what one I/O does.
type Op uint8

// Operations.
const (
	OpRead Op = iota
	OpWrite
	// OpTrim deallocates the I/O's blocks (Dataset Management with the
	// Deallocate attribute); it moves no data.
	OpTrim
)

func (o Op) String() string {
	switch o {
	case OpWrite:
		return "write"
	case OpTrim:
		return "trim"
	}
	return "read"
}

// IO is one I/O slot of a worker: the engine fills Op, LBA, NLB and Buf and
// calls Device.Submit; the device moves the data, sets Err and calls
// Complete exactly once (on any goroutine, even inside Submit). A worker
// has iodepth slots, made once, so the hot path allocates nothing.
type IO struct {
	Op  Op
	LBA uint64 // first logical block
	NLB uint32 // number of logical blocks
	Buf []byte // NLB * block size bytes
	Err error
	// Dev is the device's own per-slot state, set by Device.Init.
	Dev any

	w        *worker
	state    atomic.Uint32
	intended int64 // when the I/O should have been issued (engine clock, ns)
	issued   int64 // when it was handed to the device
	gen      uint32
	busy     bool   // in flight (under the worker lock)
	buf      []byte // full-size buffer (largest block size of the job)
}

// Complete hands a finished I/O back to the engine.
func (io *IO) Complete() { io.w.complete(io) }

// DeviceInfo describes a device to the engine.
type DeviceInfo struct {
	Name      string // for reports: "nqn...:ns1 @ 127.0.0.1:4420", "null"
	NSID      uint32
	BlockSize int    // logical block size in bytes
	Blocks    uint64 // capacity in logical blocks
	MaxDepth  int    // most I/Os in flight at once (0: no limit)
	// MaxTransfer is the largest data transfer of one command in bytes
	// (the controller's MDTS; 0: no limit).
	MaxTransfer int
	// Splits says the device sends an I/O larger than MaxTransfer as
	// several commands, as the kernel does for a block device (then each
	// I/O takes up to ceil(size/MaxTransfer) of the MaxDepth commands);
	// otherwise such an I/O is refused before the run.
	Splits bool
	// CanTrim says the device takes OpTrim (an NVMe controller whose ONCS
	// has Dataset Management).
	CanTrim bool
}

// Device is what a worker drives: an NVMe I/O queue and namespace, or an
// in-process device. Submit must not allocate and must not block for long.
type Device interface {
	Info() DeviceInfo
	// Init is called once per slot before the run, to attach per-slot
	// state (io.Dev).
	Init(io *IO)
	// Submit starts io. If it returns an error Complete is not called.
	Submit(io *IO) error
}

// NullDevice completes every I/O at once, inside Submit, moving no data:
// it measures the engine alone.
type NullDevice struct {
	BlockSize int
	Blocks    uint64
}

// Info implements Device.
func (d *NullDevice) Info() DeviceInfo {
	return DeviceInfo{Name: "null", NSID: 1, BlockSize: d.BlockSize, Blocks: d.Blocks, CanTrim: true}
}

// Init implements Device.
func (d *NullDevice) Init(*IO) {}

// Submit implements Device.
func (d *NullDevice) Submit(io *IO) error {
	io.Err = nil
	io.Complete()
	return nil
}

// NVMeDevice is one namespace reached through one I/O queue.
type NVMeDevice struct {
	Queue       *initiator.Queue
	NSID        uint32
	BlockSize   int
	Blocks      uint64
	MaxTransfer int // bytes (MDTS); 0: no limit
	Name        string
	CanTrim     bool // the controller has Dataset Management (ONCS)
}

// OpenNVMe describes namespace nsid of ctrl through I/O queue q
// (Identify Namespace gives its block size and capacity).
func OpenNVMe(ctx context.Context, ctrl *initiator.Controller, q *initiator.Queue, nsid uint32) (*NVMeDevice, error) {
	ns, err := ctrl.IdentifyNamespace(ctx, nsid)
	if err == nil && ns.NSZE == 0 || errors.As(err, new(nvme.Status)) {
		// An inactive or invalid namespace: say which ones are there.
		active := "none"
		if ids, aerr := ctrl.ActiveNamespaces(ctx); aerr == nil && len(ids) > 0 {
			active = fmt.Sprint(ids)
		}
		return nil, &UsageError{fmt.Errorf("no namespace %d on %s (active namespaces: %s): give --nsid or filename='ns=N'", nsid, ctrl.SubNQN(), active)}
	}
	if err != nil {
		return nil, fmt.Errorf("identify namespace %d: %w", nsid, err)
	}
	canTrim := false
	if id := ctrl.IdentifyData(); id != nil {
		canTrim = id.ONCS&nvme.ONCSDSM != 0
	}
	return &NVMeDevice{Queue: q, NSID: nsid, BlockSize: int(ns.BlockSize()), Blocks: ns.NSZE,
		MaxTransfer: ctrl.MaxTransferSize(), Name: fmt.Sprintf("%s ns%d", ctrl.SubNQN(), nsid), CanTrim: canTrim}, nil
}

// Info implements Device.
func (d *NVMeDevice) Info() DeviceInfo {
	return DeviceInfo{Name: d.Name, NSID: d.NSID, BlockSize: d.BlockSize, Blocks: d.Blocks, MaxDepth: d.Queue.Depth(),
		MaxTransfer: d.MaxTransfer, Splits: true, CanTrim: d.CanTrim}
}

// nvmeSlot is one I/O slot: one request per MDTS-sized part of the
// largest I/O the slot carries (one, unless bs exceeds MDTS).
type nvmeSlot struct {
	reqs []initiator.Request
	io   *IO
	left atomic.Int32 // parts not yet completed
	mu   sync.Mutex
	err  error // the first part's error
	dsm  [nvme.DSMRangeSize]byte
}

func (s *nvmeSlot) done(r *initiator.Request) {
	if r.Err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = r.Err
		}
		s.mu.Unlock()
	}
	s.finish(1)
}

// finish counts n parts done; the last completes the I/O, so its latency
// is the whole fio I/O's, as the kernel's is for a split bio.
func (s *nvmeSlot) finish(n int32) {
	if s.left.Add(-n) != 0 {
		return
	}
	s.mu.Lock()
	s.io.Err = s.err
	s.mu.Unlock()
	s.io.Complete()
}

// parts is how many commands an I/O of n bytes takes.
func (d *NVMeDevice) parts(n int) int {
	if d.MaxTransfer <= 0 || n <= d.MaxTransfer || n == 0 {
		return 1
	}
	return (n + d.MaxTransfer - 1) / d.MaxTransfer
}

// Init implements Device.
func (d *NVMeDevice) Init(io *IO) {
	s := &nvmeSlot{io: io, reqs: make([]initiator.Request, d.parts(len(io.buf)))}
	for i := range s.reqs {
		s.reqs[i].Done = s.done
	}
	io.Dev = s
}

// Submit implements Device. An I/O beyond MDTS goes as several commands
// of at most MDTS each.
func (d *NVMeDevice) Submit(io *IO) error {
	s := io.Dev.(*nvmeSlot)
	if io.Op == OpTrim {
		// One Deallocate range: 16 bytes of data, whatever the size.
		r := &s.reqs[0]
		rg := nvme.DSMRange{NLB: io.NLB, SLBA: io.LBA}
		rg.Put(s.dsm[:])
		r.SQE, r.Data, r.Dir = nvme.DSMCmd(d.NSID, 1, true), s.dsm[:], initiator.ToController
		s.err = nil
		s.left.Store(1)
		return d.Queue.Submit(r)
	}
	n := d.parts(len(io.Buf))
	per := uint32(len(io.Buf) / n / d.BlockSize)
	if n > 1 {
		per = uint32(d.MaxTransfer / d.BlockSize)
	}
	s.err = nil
	s.left.Store(int32(n))
	for i := range n {
		r := &s.reqs[i]
		off := uint32(i) * per
		nlb := min(per, io.NLB-off)
		r.Data = io.Buf[int(off)*d.BlockSize : int(off+nlb)*d.BlockSize]
		if io.Op == OpWrite {
			r.SQE = nvme.WriteCmd(d.NSID, io.LBA+uint64(off), nlb)
			r.Dir = initiator.ToController
		} else {
			r.SQE = nvme.ReadCmd(d.NSID, io.LBA+uint64(off), nlb)
			r.Dir = initiator.FromController
		}
		if err := d.Queue.Submit(r); err != nil {
			if i == 0 {
				return err // nothing in flight: the caller fails the I/O
			}
			// Parts already sent complete on their own; the I/O
			// fails with this error once they have.
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
			s.finish(int32(n - i))
			return nil
		}
	}
	return nil
}

// parts is how many commands the device sends for an I/O of n bytes.
func (i DeviceInfo) parts(n int) int {
	if !i.Splits || i.MaxTransfer <= 0 || n <= i.MaxTransfer {
		return 1
	}
	return (n + i.MaxTransfer - 1) / i.MaxTransfer
}
