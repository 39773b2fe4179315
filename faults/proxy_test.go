package faults

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// echo serves an echo server and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T, to string) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1:0", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends b and reads it back within d.
func roundTrip(c net.Conn, b []byte, d time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(b); err != nil {
		return err
	}
	r := make([]byte, len(b))
	if _, err := io.ReadFull(c, r); err != nil {
		return err
	}
	if !bytes.Equal(r, b) {
		return errors.New("echo differs")
	}
	return nil
}

func TestForwardDelayBandwidth(t *testing.T) {
	p := newProxy(t, echo(t))
	var events []string
	p.OnEvent(func(e Event) { events = append(events, e.What) })
	c := dial(t, p)
	if err := roundTrip(c, []byte("hello"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.SetDelay(ToTarget, 50*time.Millisecond, 10*time.Millisecond)
	start := time.Now()
	if err := roundTrip(c, []byte("slow"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatalf("delay not applied: %v", time.Since(start))
	}
	p.SetDelay(ToTarget, 0, 0)
	p.SetBandwidth(ToHost, 100<<10) // 100 KiB/s: 20 KiB takes ~200 ms
	start = time.Now()
	if err := roundTrip(c, bytes.Repeat([]byte{7}, 20<<10), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatalf("bandwidth not limited: %v", time.Since(start))
	}
	if len(events) != 3 {
		t.Fatalf("events %q", events)
	}
}

func TestBlackholeDropReset(t *testing.T) {
	p := newProxy(t, echo(t))
	c := dial(t, p)
	p.SetBlackhole(true)
	if err := roundTrip(c, []byte("stuck"), 200*time.Millisecond); err == nil {
		t.Fatal("blackhole forwarded")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("blackhole: %v, want a timeout (the connection stays open)", err)
	}
	p.SetBlackhole(false)
	r := make([]byte, 5)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, r); err != nil || string(r) != "stuck" {
		t.Fatalf("after blackhole: %q %v", r, err)
	}
	p.SetDrop(ToHost, true)
	if err := roundTrip(c, []byte("gone"), 200*time.Millisecond); err == nil {
		t.Fatal("drop forwarded")
	}
	p.SetDrop(ToHost, false)
	if err := roundTrip(c, []byte("back"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(r); err == nil {
		t.Fatal("read after reset succeeded")
	}
	// Down refuses new connections until up.
	p.SetDown(true)
	if c2, err := net.DialTimeout("tcp", p.Addr().String(), 5*time.Second); err == nil {
		if err := roundTrip(c2, []byte("x"), 2*time.Second); err == nil {
			t.Fatal("down path forwarded")
		}
		c2.Close()
	}
	p.SetDown(false)
	if err := roundTrip(dial(t, p), []byte("up"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.CloseConns()
}

func TestFlapTimeline(t *testing.T) {
	p := newProxy(t, echo(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var names []string
	steps := p.FlapSteps(0, 20*time.Millisecond, 20*time.Millisecond, 3)
	if err := Run(ctx, steps, func(n string, _ time.Time) { names = append(names, n) }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 6 || names[0] != "path down" || names[5] != "path up" || p.IsDown() {
		t.Fatalf("steps %q down %v", names, p.IsDown())
	}
	if err := p.Flap(ctx, time.Millisecond, time.Millisecond, 2); err != nil {
		t.Fatal(err)
	}
}

func TestFramerCorruptsAtOffset(t *testing.T) {
	// Two PDUs: a 24-byte one of type 5, then a 32-byte one of type 7.
	pdu := func(typ byte, n int) []byte {
		b := make([]byte, n)
		b[0], b[2] = typ, 24
		b[4] = byte(n)
		return b
	}
	stream := append(pdu(5, 24), pdu(7, 32)...)
	orig := bytes.Clone(stream)
	arms := []Corruption{{PDUType: 7, Offset: 30, Mask: 0xFF, Count: 1}}
	var f framer
	// Fed one byte at a time, as a stream may arrive.
	hits := 0
	for i := range stream {
		hits += f.feed(stream[i:i+1], &arms)
	}
	if hits != 1 || stream[24+30] != 0xFF || arms[0].Count != 0 {
		t.Fatalf("hits %d byte %#x arms %+v", hits, stream[24+30], arms)
	}
	orig[54] ^= 0xFF
	if !bytes.Equal(stream, orig) {
		t.Fatal("other bytes changed")
	}
}

// TestDigestCorruption: a byte corrupted in a C2HData's data is caught by
// the host's data digest; one in a CapsuleCmd's header by the target's
// header digest, which ends the connection.
func TestDigestCorruption(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	cfg.Subsystems[0].Namespaces[0].Size = "4MiB"
	tg := targettest.Start(t, cfg)
	p := newProxy(t, tg.Addrs()[0].String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := initiator.Connect(ctx, p.Addr().String(), target.DefaultSubsystemNQN,
		initiator.Options{HeaderDigest: true, DataDigest: true, NrIOQueues: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := c.IOQueues()[0]
	buf := make([]byte, 4096)
	if err := q.Write(ctx, 1, 0, 8, bytes.Repeat([]byte{0xA5}, 4096)); err != nil {
		t.Fatal(err)
	}
	// C2HData: 24-byte header + 4-byte header digest, then data.
	if err := p.Corrupt(ToHost, Corruption{PDUType: int(tcp.TypeC2HData), Offset: 24 + 4 + 100}); err != nil {
		t.Fatal(err)
	}
	err = q.Read(ctx, 1, 0, 8, buf)
	if err == nil || p.Corrupted() != 1 {
		t.Fatalf("corrupted read: err %v, corrupted %d", err, p.Corrupted())
	}
	t.Logf("data digest: %v", err)
	// CapsuleCmd header (SQE at 8): the target's header digest check.
	if err := p.Corrupt(ToTarget, Corruption{PDUType: int(tcp.TypeCapsuleCmd), Offset: 8 + 40, Count: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Admin().Exec(ctx, nvme.KeepAliveCmd(), nil, initiator.NoData)
	if err == nil || p.Corrupted() != 2 {
		t.Fatalf("corrupted command: err %v, corrupted %d", err, p.Corrupted())
	}
	t.Logf("header digest: %v", err)
	if p.Corrupt(ToTarget, Corruption{Offset: 3}) == nil {
		t.Fatal("offset inside the common header accepted")
	}
}

// TestHoldDeliversAfterSenderGone: bytes held toward the target reach it
// even though the host closed its side meanwhile, and even though the
// target's replies to the first of them can no longer reach the host;
// the target's side closes only after them (SetDelay drops the second).
func TestHoldDeliversAfterSenderGone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var all []byte
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			all = append(all, buf[:n]...)
			if n > 0 {
				// Reply, as a target answers a command: the host has gone,
				// so these writes fail at the proxy.
				for range 3 {
					_, _ = c.Write([]byte("reply"))
					time.Sleep(10 * time.Millisecond) // separate writes at the proxy
				}
			}
			if err != nil {
				got <- all
				return
			}
		}
	}()
	p := newProxy(t, ln.Addr().String())
	c := dial(t, p)
	p.SetHold(ToTarget, 300*time.Millisecond)
	for _, s := range []string{"first ", "second"} {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // two reads, two chunks
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Held() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if p.Held() == 0 {
		t.Fatal("nothing held")
	}
	c.Close() // the host gives up while its bytes are still held
	select {
	case b := <-got:
		if string(b) != "first second" {
			t.Fatalf("target received %q before its side closed, want both held writes", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the target's side never closed")
	}
	if p.Held() != 0 {
		t.Fatalf("held %d after delivery", p.Held())
	}
}
