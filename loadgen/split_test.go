package loadgen

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
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
