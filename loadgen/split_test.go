package loadgen

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// TestBlocksBeyondMDTSAreSplit: a bs larger than the controller's MDTS
// runs, as against a kernel block device: each I/O goes as MDTS-sized
// commands and counts once, with its data intact (a write verify job
// reads back and checks every block). An iodepth whose split commands
// cannot fit the queue is refused before any I/O, naming MDTS.
func TestBlocksBeyondMDTSAreSplit(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0", PortID: 1}}
	cfg.MDTS = "128KiB"
	cfg.Subsystems[0].Namespaces = []target.NamespaceConfig{{NSID: 1, Backend: target.BackendMem, Size: "16MiB", BlockSize: 512}}
	tg := targettest.Start(t, cfg)
	h, p, _ := net.SplitHostPort(tg.Addrs()[0].String())
	a := Address{Addr: h, Port: p, SubNQN: cfg.Subsystems[0].NQN}

	j := mustJob(t, "big", "rw", "randwrite", "bs", "320k", "iodepth", "4", "size", "8m", "verify", "crc32c")
	res, err := runNVMe(t, a, j)
	if err != nil {
		t.Fatal(err)
	}
	w := res.Jobs[0]
	if w.Write.IOs != 8<<20/(320<<10) || w.Write.Bytes != w.Write.IOs*320<<10 || w.Verified == 0 {
		t.Errorf("bs 320k over MDTS 128k: %d writes, %d bytes, %d blocks verified", w.Write.IOs, w.Write.Bytes, w.Verified)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deep := mustJob(t, "deep", "rw", "randread", "bs", "1m", "iodepth", "100", "size", "8m")
	targets, conn, err := Dial(ctx, []*Job{deep}, a, initiator.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = Run(ctx, targets, RunOptions{})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "MDTS") {
		t.Errorf("iodepth 100 of 1m I/Os at MDTS 128k: %v", err)
	}
}

// TestTrimDeallocates: rw=trim sends Dataset Management deallocate over
// the job's region (afterwards the blocks read back as zeros from the
// reference target), trimwrite writes each block after trimming it, and
// a device without Dataset Management refuses a trim job up front.
func TestTrimDeallocates(t *testing.T) {
	h, p, nqn := startTarget(t)
	a := Address{Addr: h, Port: p, SubNQN: nqn, NSIDs: []uint32{1}}
	if _, err := runNVMe(t, a, mustJob(t, "fill", "rw", "write", "bs", "64k", "size", "1m", "verify", "crc32c")); err != nil {
		t.Fatal(err)
	}
	res, err := runNVMe(t, a, mustJob(t, "trim", "rw", "randtrim", "bs", "16k", "size", "1m", "iodepth", "4"))
	if err != nil {
		t.Fatal(err)
	}
	if tr := res.Jobs[0].Trim; tr.IOs != 64 || tr.Bytes != 1<<20 || res.Jobs[0].Read.IOs+res.Jobs[0].Write.IOs != 0 {
		t.Errorf("randtrim of 1m in 16k: %d trims, %d bytes", tr.IOs, tr.Bytes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := initiator.Connect(ctx, net.JoinHostPort(h, p), nqn, initiator.Options{NrIOQueues: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	if _, err := c.IOQueues()[0].Exec(ctx, nvme.ReadCmd(1, 1000, 128), buf, initiator.FromController); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Error("blocks still hold data after randtrim")
	}

	_, ios := runSeq(t, 4096, "rw", "randtrimwrite", "bs", "4k", "size", "64k")
	if len(ios) != 32 {
		t.Fatalf("randtrimwrite of 64k: %d I/Os, want 16 trims and 16 writes", len(ios))
	}
	for i := 0; i+1 < len(ios); i += 2 {
		if ios[i].Op != OpTrim || ios[i+1].Op != OpWrite || ios[i].LBA != ios[i+1].LBA {
			t.Fatalf("I/O %d, %d: %+v then %+v; want a trim and a write of the same block", i, i+1, ios[i], ios[i+1])
		}
	}

	_, err = Run(t.Context(), []Target{{Job: mustJob(t, "t", "rw", "trim"), Devices: []Device{newMemDevice(512, 1024)}}}, RunOptions{})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "Dataset Management") {
		t.Errorf("trim on a device without DSM: %v", err)
	}
}
