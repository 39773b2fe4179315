// Package perf holds the end-to-end speed measurements of nvmftest and the
// baseline they are judged against: a minimal Go TCP ping-pong with the
// message shape of a 4 KiB NVMe/TCP read (a 72-byte command out, a 24-byte
// header plus 4096 bytes of data back). The ping-pong does no protocol
// work at all, so its rate is the ceiling of what Go and the loopback
// device give on this machine; our initiator and target are reported as a
// fraction of it, measured in the same run.
package perf

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Message shape of the ping-pong: what a 4 KiB read costs on the wire
// without digests (CapsuleCmd; C2HData header + data with SUCCESS, so no
// CapsuleResp).
const (
	PingSize = 72
	PongSize = 24 + 4096
)

// PingPongServer answers every PingSize-byte message with PongSize bytes,
// flushing only when no more input is buffered (the same coalescing our
// target does), one goroutine per connection.
type PingPongServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

// StartPingPongServer listens on addr (use "127.0.0.1:0").
func StartPingPongServer(addr string) (*PingPongServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &PingPongServer{ln: ln}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is where the server listens.
func (s *PingPongServer) Addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for its goroutines.
func (s *PingPongServer) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *PingPongServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			serve(c)
		}()
	}
}

func serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 256<<10)
	ping := make([]byte, PingSize)
	pong := make([]byte, PongSize)
	for {
		if _, err := io.ReadFull(r, ping); err != nil {
			return
		}
		// Echo the tag so the client can match out-of-order answers.
		copy(pong[:8], ping[:8])
		if _, err := w.Write(pong); err != nil {
			return
		}
		if r.Buffered() < PingSize {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// PingPongResult is what one client run measured.
type PingPongResult struct {
	Ops       int
	Elapsed   time.Duration
	Latencies []time.Duration // one per op, in completion order
}

// IOPS is operations per second.
func (r PingPongResult) IOPS() float64 { return float64(r.Ops) / r.Elapsed.Seconds() }

// RunPingPong keeps depth messages in flight on one connection until ops
// have completed, recording each round-trip time. A writer goroutine sends
// a new ping whenever the reader sees a pong, so the queue depth holds, as
// an NVMe host's would.
func RunPingPong(addr string, depth, ops int) (PingPongResult, error) {
	if depth < 1 || ops < depth {
		return PingPongResult{}, errors.New("perf: need depth >= 1 and ops >= depth")
	}
	return runPingPong(addr, depth, ops, 0)
}

// RunPingPongFor is RunPingPong for a duration instead of a count: it
// stops issuing after d and returns once the pings in flight are back.
func RunPingPongFor(addr string, depth int, d time.Duration) (PingPongResult, error) {
	if depth < 1 || d <= 0 {
		return PingPongResult{}, errors.New("perf: need depth >= 1 and a positive duration")
	}
	return runPingPong(addr, depth, 0, d)
}

// runPingPong runs until ops have completed (ops > 0) or for d.
func runPingPong(addr string, depth, ops int, d time.Duration) (PingPongResult, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return PingPongResult{}, err
	}
	defer c.Close()
	// sent holds issue times in ns; atomics because the reader learns of a
	// send through the network, which the race detector cannot see.
	sent := make([]atomic.Int64, depth)
	epoch := time.Now()
	lat := make([]time.Duration, 0, max(ops, 1024))
	// A tag on slots is a ping to send; closing slots ends the writer.
	slots := make(chan int, depth)
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		ping := make([]byte, PingSize)
		for tag := range slots {
			ping[0] = byte(tag)
			sent[tag].Store(int64(time.Since(epoch)))
			if _, err := w.Write(ping); err != nil {
				werr <- err
				return
			}
			if len(slots) == 0 {
				if err := w.Flush(); err != nil {
					werr <- err
					return
				}
			}
		}
		werr <- w.Flush()
	}()
	start := time.Now()
	for i := 0; i < depth; i++ {
		slots <- i
	}
	r := bufio.NewReaderSize(c, 256<<10)
	pong := make([]byte, PongSize)
	inflight, stopping := depth, false
	for inflight > 0 {
		if _, err := io.ReadFull(r, pong); err != nil {
			if !stopping {
				close(slots)
			}
			return PingPongResult{}, err
		}
		tag := int(pong[0])
		now := time.Since(epoch)
		lat = append(lat, now-time.Duration(sent[tag].Load()))
		inflight--
		if !stopping {
			if ops > 0 && len(lat)+inflight >= ops || ops == 0 && now >= d+start.Sub(epoch) {
				stopping = true
				close(slots)
			} else {
				slots <- tag
				inflight++
			}
		}
	}
	elapsed := time.Since(start)
	if err := <-werr; err != nil {
		return PingPongResult{}, err
	}
	return PingPongResult{Ops: len(lat), Elapsed: elapsed, Latencies: lat}, nil
}
