package loadgen

import (
	"context"
	"errors"
	"fmt"
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
)

func (o Op) String() string {
	if o == OpWrite {
		return "write"
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
	// MaxTransfer is the largest data transfer of one I/O in bytes (the
	// controller's MDTS; 0: no limit).
	MaxTransfer int
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
	return DeviceInfo{Name: "null", NSID: 1, BlockSize: d.BlockSize, Blocks: d.Blocks}
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
	return &NVMeDevice{Queue: q, NSID: nsid, BlockSize: int(ns.BlockSize()), Blocks: ns.NSZE,
		MaxTransfer: ctrl.MaxTransferSize(), Name: fmt.Sprintf("%s ns%d", ctrl.SubNQN(), nsid)}, nil
}

// Info implements Device.
func (d *NVMeDevice) Info() DeviceInfo {
	return DeviceInfo{Name: d.Name, NSID: d.NSID, BlockSize: d.BlockSize, Blocks: d.Blocks, MaxDepth: d.Queue.Depth(),
		MaxTransfer: d.MaxTransfer}
}

type nvmeSlot struct {
	req initiator.Request
	io  *IO
}

func (s *nvmeSlot) done(r *initiator.Request) {
	s.io.Err = r.Err
	s.io.Complete()
}

// Init implements Device.
func (d *NVMeDevice) Init(io *IO) {
	s := &nvmeSlot{io: io}
	s.req.Done = s.done
	io.Dev = s
}

// Submit implements Device.
func (d *NVMeDevice) Submit(io *IO) error {
	s := io.Dev.(*nvmeSlot)
	s.req.Data = io.Buf
	if io.Op == OpWrite {
		s.req.SQE = nvme.WriteCmd(d.NSID, io.LBA, io.NLB)
		s.req.Dir = initiator.ToController
	} else {
		s.req.SQE = nvme.ReadCmd(d.NSID, io.LBA, io.NLB)
		s.req.Dir = initiator.FromController
	}
	return d.Queue.Submit(&s.req)
}
