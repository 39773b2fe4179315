package hostconform

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nvmftest/nvmftest/control"
	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// SelfHost is the host control of nvmftest's own initiator, in process:
// `conform-host --self`, and the tests. It implements the verbs of
// verbs.go (connect, disconnect, io, rescan, discover, connect-all).
type SelfHost struct {
	// Options are the initiator options every connect starts from (the
	// connect verb's arguments override them): Deviations, Timeout ...
	Options initiator.Options

	mu    sync.Mutex
	ctrls map[string][]*initiator.Controller
}

// Do implements control.Control.
func (h *SelfHost) Do(ctx context.Context, a control.Action) error {
	switch a.Verb {
	case VerbConnect:
		return h.connect(ctx, a.Args)
	case VerbDisconnect:
		return h.disconnect(a.Args["nqn"])
	case VerbIO:
		return h.io(ctx, a.Args)
	case VerbRescan:
		return h.rescan(ctx, a.Args["nqn"])
	case VerbDiscover:
		return h.discover(ctx, a.Args)
	case VerbConnectAll:
		return h.connectAll(ctx, a.Args)
	}
	return fmt.Errorf("%w: %s", control.ErrUnsupported, a)
}

func (h *SelfHost) options(args map[string]string) (initiator.Options, error) {
	o := h.Options
	if v := args["hostnqn"]; v != "" {
		o.HostNQN = v
	}
	if v := args["hostid"]; v != "" {
		id, err := initiator.ParseHostID(v)
		if err != nil {
			return o, err
		}
		o.HostID = id
	}
	for k, p := range map[string]*bool{"hdr_digest": &o.HeaderDigest, "data_digest": &o.DataDigest} {
		if v, ok := args[k]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s=%q: %v", k, v, err)
			}
			*p = b
		}
	}
	for k, p := range map[string]*int{"nr_io_queues": &o.NrIOQueues, "queue_size": &o.QueueSize} {
		if v, ok := args[k]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return o, fmt.Errorf("%s=%q: %v", k, v, err)
			}
			*p = n
		}
	}
	if v, ok := args["kato"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, fmt.Errorf("kato=%q: %v", v, err)
		}
		o.KATO = time.Duration(n) * time.Second
		if n == 0 {
			o.KATO = -1
		}
	}
	o.DHCHAPSecret = args["dhchap_secret"]
	o.DHCHAPCtrlSecret = args["dhchap_ctrl_secret"]
	if o.NrIOQueues == 0 {
		o.NrIOQueues = 2
	}
	return o, nil
}

func (h *SelfHost) connect(ctx context.Context, args map[string]string) error {
	o, err := h.options(args)
	if err != nil {
		return err
	}
	c, err := initiator.Connect(ctx, net.JoinHostPort(args["addr"], args["port"]), args["nqn"], o)
	if err != nil {
		return err
	}
	// As a host operating system: an event outstanding, and the log
	// page each event names read (the events checks judge it).
	c.HandleEvents(nil)
	h.add(args["nqn"], c)
	return nil
}

// discover reads the discovery log; with persistent=true it keeps the
// discovery controller connected, with a keep alive timeout (an explicit
// persistent connection, NVMe Base 2.2 3.1.3.3) and its events handled,
// until disconnect nqn=nqn.2014-08.org.nvmexpress.discovery.
func (h *SelfHost) discover(ctx context.Context, args map[string]string) error {
	o, err := h.options(args)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(args["addr"], args["port"])
	if args["persistent"] != "true" {
		_, err = initiator.Discover(ctx, addr, o)
		return err
	}
	if o.KATO <= 0 {
		o.KATO = initiator.DefaultKATO
	}
	c, err := initiator.Connect(ctx, addr, nvme.DiscoveryNQN, o)
	if err != nil {
		return err
	}
	c.HandleEvents(nil)
	if _, err := c.DiscoveryLog(ctx); err != nil {
		_ = c.Close()
		return err
	}
	h.add(nvme.DiscoveryNQN, c)
	return nil
}

// connectAll connects every NVM subsystem the discovery service lists
// (initiator.ConnectAll); it fails if any entry could not be connected.
func (h *SelfHost) connectAll(ctx context.Context, args map[string]string) error {
	o, err := h.options(args)
	if err != nil {
		return err
	}
	cs, err := initiator.ConnectAll(ctx, net.JoinHostPort(args["addr"], args["port"]), o)
	for _, c := range cs {
		c.HandleEvents(nil)
		h.add(c.SubNQN(), c)
	}
	if err == nil && len(cs) == 0 {
		return errors.New("the discovery log lists no NVM subsystem")
	}
	return err
}

func (h *SelfHost) add(nqn string, c *initiator.Controller) {
	h.mu.Lock()
	if h.ctrls == nil {
		h.ctrls = map[string][]*initiator.Controller{}
	}
	h.ctrls[nqn] = append(h.ctrls[nqn], c)
	h.mu.Unlock()
}

func (h *SelfHost) disconnect(nqn string) error {
	h.mu.Lock()
	cs := h.ctrls[nqn]
	delete(h.ctrls, nqn)
	h.mu.Unlock()
	for _, c := range cs {
		// A controller a fatal error already took down fails its
		// shutdown: that is not the disconnect failing.
		_ = c.Close()
	}
	return nil
}

func (h *SelfHost) controller(nqn string) (*initiator.Controller, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.ctrls[nqn]
	if len(cs) == 0 {
		return nil, fmt.Errorf("not connected to %s", nqn)
	}
	return cs[len(cs)-1], nil
}

func (h *SelfHost) rescan(ctx context.Context, nqn string) error {
	c, err := h.controller(nqn)
	if err != nil {
		return err
	}
	nsids, err := c.ActiveNamespaces(ctx)
	if err != nil {
		return err
	}
	for _, n := range nsids {
		if _, err := c.IdentifyNamespace(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// io runs the io verb: size bytes in bs-byte commands, iodepth at once,
// spread over the I/O queues.
func (h *SelfHost) io(ctx context.Context, args map[string]string) error {
	c, err := h.controller(args["nqn"])
	if err != nil {
		return err
	}
	num := func(k string, def int) (int, error) {
		v, ok := args[k]
		if !ok {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%s=%q: want a byte count", k, v)
		}
		return n, nil
	}
	nsid, err := num("nsid", 1)
	if err != nil {
		return err
	}
	bs, err := num("bs", 4096)
	if err != nil {
		return err
	}
	size, err := num("size", bs)
	if err != nil {
		return err
	}
	depth, err := num("iodepth", 1)
	if err != nil {
		return err
	}
	offset, err := num("offset", 0)
	if err != nil {
		return err
	}
	qs := c.IOQueues()
	if len(qs) == 0 {
		return errors.New("the controller has no I/O queues")
	}
	ns, err := c.IdentifyNamespace(ctx, uint32(nsid))
	if err != nil {
		return err
	}
	lba := int(ns.BlockSize())
	if lba == 0 || bs%lba != 0 || offset%lba != 0 || bs == 0 {
		return fmt.Errorf("bs %d and offset %d must be multiples of the %d-byte block", bs, offset, lba)
	}
	rw := args["rw"]
	write := rw == "write" || rw == "randwrite"
	random := rw == "randread" || rw == "randwrite"
	if !write && rw != "read" && rw != "randread" {
		return fmt.Errorf("rw=%q: want read, write, randread or randwrite", rw)
	}
	n := max(size/bs, 1)
	span := max(int(ns.NSZE)*lba-offset, bs)
	jobs := make(chan int, n)
	for i := range n {
		jobs <- i
	}
	close(jobs)
	var wg sync.WaitGroup
	errc := make(chan error, max(depth, 1))
	for w := range max(depth, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := qs[w%len(qs)]
			buf := make([]byte, bs)
			for i := range jobs {
				off := offset + (i*bs)%span
				if random {
					off = offset + rand.IntN(span/bs)*bs
				}
				slba, nlb := uint64(off/lba), uint32(bs/lba)
				var err error
				if write {
					for j := range buf {
						buf[j] = byte(i + j)
					}
					err = q.Write(ctx, uint32(nsid), slba, nlb, buf)
				} else {
					err = q.Read(ctx, uint32(nsid), slba, nlb, buf)
				}
				if err != nil {
					errc <- fmt.Errorf("%s at byte %d: %w", rw, off, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// Close disconnects everything still connected.
func (h *SelfHost) Close() {
	h.mu.Lock()
	all := h.ctrls
	h.ctrls = nil
	h.mu.Unlock()
	for _, cs := range all {
		for _, c := range cs {
			_ = c.Close()
		}
	}
}
