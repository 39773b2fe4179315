package target

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// Verified writes for the shutdown and crash tests: every slot is one 4 KiB
// block that only one goroutine writes, each time with the next
// generation, so what a slot may hold afterwards is exactly known: at least
// the generation that was acknowledged (or, for a crash, made durable by
// a completed Flush or a FUA write) and at most the last one sent.

const (
	slotBytes  = 4096
	slotBlocks = slotBytes / 512
)

func slotData(slot int, gen uint64) []byte {
	b := make([]byte, slotBytes)
	binary.LittleEndian.PutUint64(b[0:], uint64(slot))
	binary.LittleEndian.PutUint64(b[8:], gen)
	x := uint32(slot)*2654435761 ^ uint32(gen)*40503
	for i := 16; i < len(b); i++ {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// slotGen decodes a slot's block: its generation (0: never written).
func slotGen(slot int, b []byte) (uint64, error) {
	zero := true
	for _, v := range b {
		if v != 0 {
			zero = false
			break
		}
	}
	if zero {
		return 0, nil
	}
	gen := binary.LittleEndian.Uint64(b[8:])
	if s := binary.LittleEndian.Uint64(b[0:]); s != uint64(slot) {
		return 0, fmt.Errorf("slot %d holds slot %d's data (misplaced write)", slot, s)
	}
	if string(slotData(slot, gen)) != string(b) {
		return 0, fmt.Errorf("slot %d generation %d is torn or corrupt", slot, gen)
	}
	return gen, nil
}

// slotState is what the host knows about every slot.
type slotState struct {
	mu      sync.Mutex
	sent    []uint64 // last generation submitted
	acked   []uint64 // last generation acknowledged
	durable []uint64 // last generation acknowledged before a completed Flush, or written with FUA
	errs    int      // commands that failed (expected once the target goes away)
}

func newSlotState(n int) *slotState {
	return &slotState{sent: make([]uint64, n), acked: make([]uint64, n), durable: make([]uint64, n)}
}

// from starts every slot at the generations found on the device.
func (s *slotState) from(gens []uint64) {
	copy(s.sent, gens)
	copy(s.acked, gens)
	copy(s.durable, gens)
}

// check compares what the device holds with what the host knows: crash
// selects durable (a crash may lose what was only acknowledged) instead of
// acked as the lower bound.
func (s *slotState) check(gens []uint64, crash bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	low := s.acked
	if crash {
		low = s.durable
	}
	for i, g := range gens {
		if g < low[i] || g > s.sent[i] {
			return fmt.Errorf("slot %d holds generation %d, want %d..%d (acked %d, durable %d)",
				i, g, low[i], s.sent[i], s.acked[i], s.durable[i])
		}
	}
	return nil
}

// readSlots reads every slot through q.
func readSlots(ctx context.Context, q *initiator.Queue, nsid uint32, n int) ([]uint64, error) {
	gens := make([]uint64, n)
	buf := make([]byte, slotBytes)
	for i := range gens {
		if err := q.Read(ctx, nsid, uint64(i*slotBlocks), slotBlocks, buf); err != nil {
			return nil, fmt.Errorf("read slot %d: %w", i, err)
		}
		g, err := slotGen(i, buf)
		if err != nil {
			return nil, err
		}
		gens[i] = g
	}
	return gens, nil
}

// writeSlots writes the slots from one goroutine each, spread over the
// controller's I/O queues, every fourth write with FUA, and Flushes every
// flushEvery from another goroutine, until stop is closed or the target
// stops answering. It returns when every command it sent has completed.
func writeSlots(c *initiator.Controller, nsid uint32, s *slotState, flushEvery time.Duration, stop <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	qs := c.IOQueues()
	var wg sync.WaitGroup
	for slot := range s.sent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := qs[slot%len(qs)]
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				s.mu.Lock()
				gen := s.sent[slot] + 1
				s.sent[slot] = gen
				s.mu.Unlock()
				sqe := nvme.WriteCmd(nsid, uint64(slot*slotBlocks), slotBlocks)
				fua := n%4 == 3
				if fua {
					nvme.SetFUA(&sqe)
				}
				_, err := q.Exec(ctx, sqe, slotData(slot, gen), initiator.ToController)
				s.mu.Lock()
				if err != nil {
					s.errs++
					s.mu.Unlock()
					return
				}
				s.acked[slot] = gen
				if fua {
					s.durable[slot] = gen
				}
				s.mu.Unlock()
			}
		}()
	}
	if flushEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(flushEvery):
				}
				s.mu.Lock()
				snap := append([]uint64(nil), s.acked...)
				s.mu.Unlock()
				if err := qs[0].Flush(ctx, nsid); err != nil {
					s.mu.Lock()
					s.errs++
					s.mu.Unlock()
					return
				}
				s.mu.Lock()
				for i, g := range snap {
					s.durable[i] = max(s.durable[i], g)
				}
				s.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}
