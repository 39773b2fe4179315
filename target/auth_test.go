package target

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

const authHost = "nqn.2014-08.io.nvmftest:authhost"

func authTarget(t *testing.T, h DHCHAPHost) *Target {
	cfg := testConfig()
	cfg.Subsystems[0].AllowAnyHost = false
	cfg.Subsystems[0].Hosts = []string{authHost}
	h.HostNQN = authHost
	cfg.DHCHAP = []DHCHAPHost{h}
	return startTarget(t, cfg)
}

// TestDHCHAP: our initiator authenticates to our target with every hash,
// with and without a DH exchange, one way and both ways, on the admin queue
// and every I/O queue; wrong or missing secrets are refused.
func TestDHCHAP(t *testing.T) {
	hostKey := nvme.NewDHCHAPKey(nvme.HashSHA256)
	ctrlKey := nvme.NewDHCHAPKey(0)
	cases := []struct {
		hash, group string
		bidi        bool
	}{
		{"sha256", "null", false},
		{"sha384", "ffdhe2048", false},
		{"sha512", "ffdhe3072", true},
		{"sha256", "null", true},
		{"sha256", "ffdhe8192", true},
	}
	for _, tc := range cases {
		name := tc.hash + "/" + tc.group
		if tc.bidi {
			name += "/bidirectional"
		}
		t.Run(name, func(t *testing.T) {
			h := DHCHAPHost{Key: hostKey.String(), Hash: tc.hash, DHGroup: tc.group, CtrlKey: ctrlKey.String()}
			tg := authTarget(t, h)
			o := initiator.Options{HostNQN: authHost, NrIOQueues: 2, DHCHAPSecret: hostKey.String()}
			if tc.bidi {
				o.DHCHAPCtrlSecret = ctrlKey.String()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := initiator.Connect(ctx, tg.Addrs()[0].String(), testNQN, o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if len(c.IOQueues()) != 2 {
				t.Fatalf("%d I/O queues", len(c.IOQueues()))
			}
			buf := make([]byte, 512)
			for _, q := range c.IOQueues() {
				if err := q.Write(ctx, 1, 0, 1, buf); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	h := DHCHAPHost{Key: hostKey.String(), CtrlKey: ctrlKey.String(), DHGroup: "ffdhe2048"}
	tg := authTarget(t, h)
	addr := tg.Addrs()[0].String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, bad := range []struct {
		name string
		o    initiator.Options
	}{
		{"no secret", initiator.Options{}},
		{"wrong secret", initiator.Options{DHCHAPSecret: nvme.NewDHCHAPKey(nvme.HashSHA256).String()}},
		{"wrong controller secret", initiator.Options{DHCHAPSecret: hostKey.String(), DHCHAPCtrlSecret: nvme.NewDHCHAPKey(0).String()}},
	} {
		bad.o.HostNQN = authHost
		c, err := initiator.Connect(ctx, addr, testNQN, bad.o)
		if err == nil {
			c.Close()
			t.Fatalf("%s: connected", bad.name)
		}
		if !errors.Is(err, initiator.ErrAuthFailed) {
			t.Fatalf("%s: %v", bad.name, err)
		}
		t.Logf("%s: %v", bad.name, err)
	}

	// Nothing but authentication before it succeeds.
	cl := dial(t, tg.Addrs()[0], 0)
	r := cl.exec(connectSQE(0, 31, 0, 0), connectData(testNQN, authHost, nvme.CNTLIDDynamic), true, nil)
	mustOK(t, r)
	if r.DW0&nvme.ConnectAuthReqATR == 0 {
		t.Fatalf("Connect DW0 %#x without ATR", r.DW0)
	}
	wantStatus(t, cl.exec(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil, false, nil), nvme.StatusAuthenticationRequired)
	wantStatus(t, cl.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil, false, nil), nvme.StatusAuthenticationRequired)
	// A reply before a negotiate gets Failure1.
	reply := (&nvme.DHCHAPReply{R: make([]byte, 32)}).Append(nil)
	mustOK(t, cl.exec(nvme.AuthSendCmd(0, uint32(len(reply))), reply, true, nil))
	b := make([]byte, 64)
	mustOK(t, cl.exec(nvme.AuthReceiveCmd(0, 64), nil, false, b))
	var f nvme.AuthFailure
	if err := f.Decode(b); err != nil || f.Second {
		t.Fatalf("want Failure1, got % x", b[:16])
	}
	wantStatus(t, cl.exec(nvme.AuthSendCmd(0, 0), nil, false, nil), nvme.StatusInvalidField)
	// A host without a DH-HMAC-CHAP entry does not get ATR.
	ok := dial(t, tg.Addrs()[0], 0)
	wantStatus(t, ok.exec(connectSQE(0, 31, 0, 0), connectData(testNQN, testHost, nvme.CNTLIDDynamic), true, nil), nvme.StatusConnectInvalidHost)
}

func TestDHCHAPConfig(t *testing.T) {
	cfg := testConfig()
	cfg.DHCHAP = []DHCHAPHost{{HostNQN: "h", Key: "DHHC-1:00:nope:"}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("bad key accepted")
	}
	cfg.DHCHAP = []DHCHAPHost{{HostNQN: "h", Key: nvme.NewDHCHAPKey(0).String(), DHGroup: "ffdhe1024"}}
	if err := cfg.Validate(); err == nil {
		t.Fatal("bad group accepted")
	}
	cfg.DHCHAP[0].DHGroup = "ffdhe4096"
	cfg.DHCHAP[0].Hash = "hmac(sha384)"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// authFuzzSeeds are sessions of a host that must authenticate: the whole
// DH-HMAC-CHAP exchange (with responses the fuzzer mutates), commands
// before authentication, and messages out of order.
func authFuzzSeeds() [][]byte {
	var seeds [][]byte
	send := func(s *sessionBuilder, b []byte) { s.cmd(nvme.AuthSendCmd(0, uint32(len(b))), b) }
	recv := func(s *sessionBuilder) { s.read(nvme.AuthReceiveCmd(0, 4096), 4096) }
	neg := (&nvme.AuthNegotiate{Hashes: []uint8{1, 2, 3}, DHGroups: []uint8{0, 1, 2, 3, 4, 5}}).Append(nil)
	for _, dh := range [][]byte{nil, make([]byte, 256)} {
		s := newSession(fuzzAdmin, 0)
		s.connect(fuzzNQN, 0, nvme.CNTLIDDynamic, 0, 0)
		send(s, neg)
		recv(s)
		send(s, (&nvme.DHCHAPReply{R: make([]byte, 32), CValid: true, C2: make([]byte, 32), Seq: 1, DHV: dh}).Append(nil))
		recv(s)
		send(s, (&nvme.DHCHAPSuccess2{}).Append(nil))
		s.read(nvme.IdentifyCmd(nvme.CNSController, 0, 0), 4096)
		seeds = append(seeds, s.bytes())
	}
	s := newSession(fuzzAdmin, 0)
	s.connect(fuzzNQN, 0, nvme.CNTLIDDynamic, 0, 0)
	s.enable()
	recv(s)
	send(s, (&nvme.AuthFailure{Second: true, Reason: 1}).Append(nil))
	seeds = append(seeds, s.bytes())
	return seeds
}

// FuzzTargetAuth drives the target's connection state machine with
// arbitrary byte streams from a host that has to authenticate (every hash
// and group on offer): no panic, no hang, no goroutine left behind.
func FuzzTargetAuth(f *testing.F) {
	for _, s := range authFuzzSeeds() {
		f.Add(s)
	}
	key := nvme.NewDHCHAPKey(nvme.HashSHA256).String()
	ctrl := nvme.NewDHCHAPKey(0).String()
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		cfg := fuzzConfig("")
		group := []string{"null", "ffdhe2048"}[in[0]>>7]
		cfg.DHCHAP = []DHCHAPHost{{HostNQN: testHost, Key: key, CtrlKey: ctrl, DHGroup: group}}
		tg, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		watchdog := time.AfterFunc(10*time.Second, func() { panic("target session hung") })
		defer watchdog.Stop()
		tc, hin, hout := fuzzPipe()
		tg.Serve(tc, 1)
		drained := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, hout)
			close(drained)
		}()
		_, _ = hin.Write(in[1:])
		hin.Close()
		<-drained
		hout.Close()
		if err := tg.Close(); err != nil {
			t.Fatal(err)
		}
		watchdog.Stop()
		checkNoTargetGoroutines(t)
	})
}

// TestHostAccessList: a subsystem with a host list admits only those
// hosts (anyone else's Connect gets Connect Invalid Host) and is in the
// discovery log only for them.
func TestHostAccessList(t *testing.T) {
	tg := startTarget(t, testConfig())
	const private, other = "nqn.2014-08.io.nvmftest:private", "nqn.2014-08.io.nvmftest:other"
	for _, tc := range []struct {
		host string
		sees bool
	}{{testHost, false}, {other, true}} {
		d := dial(t, tg.Addrs()[1], 0)
		r := d.exec(connectSQE(0, 31, 0, 0), connectData(nvme.DiscoveryNQN, tc.host, nvme.CNTLIDDynamic), true, nil)
		mustOK(t, r)
		mustOK(t, d.exec(nvme.PropertySetCmd(0, nvme.PropCC, false, ccEnable), nil, false, nil))
		all := make([]byte, 1024*8)
		mustOK(t, d.exec(nvme.GetLogPageCmd(nvme.LogDiscovery, 0, 0, 0, uint32(len(all))), nil, false, all))
		_, numrec, _, _ := nvme.DecodeDiscoveryLogHeader(all)
		l, err := nvme.DecodeDiscoveryLog(all[:1024*(1+numrec)])
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, e := range l.Entries {
			seen = seen || e.SUBNQN == private
		}
		if seen != tc.sees {
			t.Fatalf("host %s: private subsystem in discovery log = %v", tc.host, seen)
		}
		c := dial(t, tg.Addrs()[0], 0)
		r = c.exec(connectSQE(0, 31, 0, 0), connectData(private, tc.host, nvme.CNTLIDDynamic), true, nil)
		if tc.sees {
			mustOK(t, r)
		} else {
			wantStatus(t, r, nvme.StatusConnectInvalidHost)
		}
	}
}
