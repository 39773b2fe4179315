package initiator_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
)

// A fused pair's two capsules must reach the controller back to back
// (NVMe Base 2.1 3.4.2): a command another goroutine submits to the same
// queue at that moment must not come between them, or the controller
// aborts the pair (Missing Fused Command). Found by the soak.
func TestFusedPairNotSplitByConcurrentSubmit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := initiator.Connect(ctx, startTarget(t), target.DefaultSubsystemNQN,
		initiator.Options{NrIOQueues: 1, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := c.IOQueues()[0]
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 { // plain commands, as fast as they go
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 512)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := q.Read(ctx, 1, 4096, 1, buf); err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		}()
	}
	var fusers sync.WaitGroup
	for w := range 2 {
		fusers.Add(1)
		go func() {
			defer fusers.Done()
			lba := uint64(w)
			cur := make([]byte, 512)
			if err := q.Write(ctx, 1, lba, 1, cur); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			for i := range 1500 {
				next := bytes.Repeat([]byte{byte(i + 1)}, 512)
				err := q.CompareAndWrite(ctx, 1, lba, 1, cur, next)
				var st nvme.Status
				if errors.As(err, &st) && st.Code() == nvme.StatusAbortFusedMissing {
					t.Errorf("compare and write %d: %v: a command came between the fused pair", i, err)
					return
				}
				if err != nil {
					t.Errorf("compare and write %d: %v", i, err)
					return
				}
				cur = next
			}
		}()
	}
	fusers.Wait()
	close(stop)
	readers.Wait()
}
