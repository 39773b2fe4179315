package initiator_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/internal/testnet"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/target"
	"github.com/nvmftest/nvmftest/target/targettest"
)

// TestConnectWrongNQN: a Connect refused at the SUBNQN says so by name,
// without the alias 01h/82h has outside Fabrics commands, and still
// unwraps to the NVMe status.
func TestConnectWrongNQN(t *testing.T) {
	addr := startTarget(t)
	_, err := initiator.Connect(context.Background(), addr, "nqn.2014-08.io.nvmftest:nope", initiator.Options{NrIOQueues: -1})
	var cip *initiator.ConnectInvalidParamError
	if !errors.As(err, &cip) || cip.Field() != "SUBNQN" {
		t.Fatalf("error %v (%T), want a ConnectInvalidParamError at SUBNQN", err, err)
	}
	var st nvme.Status
	if !errors.As(err, &st) || st.Code() != nvme.StatusConnectInvalidParameters {
		t.Errorf("error %v does not unwrap to the status", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "Read Only") || !strings.Contains(msg, "Invalid Parameters at SUBNQN") {
		t.Errorf("error %q: want 'Invalid Parameters at SUBNQN' and no 'Attempted Write to Read Only Range'", msg)
	}
	for _, c := range []struct {
		in   bool
		off  uint16
		want string
	}{{true, 0, "HOSTID"}, {true, 16, "CNTLID"}, {true, 512, "HOSTNQN"}, {false, 44, "SQSIZE"}, {false, 48, "KATO"}, {true, 7, "data offset 7"}} {
		e := &initiator.ConnectInvalidParamError{InData: c.in, Offset: c.off}
		if e.Field() != c.want {
			t.Errorf("IATTR %v IPO %d: %q, want %q", c.in, c.off, e.Field(), c.want)
		}
	}
}

// TestDiscoverNotNVMeTCP: a port that answers with another protocol, or
// not at all, is named for what it is.
func TestDiscoverNotNVMeTCP(t *testing.T) {
	httpAddr := testnet.Serve(t, func(nc net.Conn) {
		_, _ = nc.Read(make([]byte, 512))
		_, _ = io.WriteString(nc, "HTTP/1.0 400 Bad Request\r\n\r\n")
	})
	silent := testnet.Serve(t, func(nc net.Conn) {
		_, _ = io.Copy(io.Discard, nc)
	})
	_, err := initiator.Discover(context.Background(), httpAddr, initiator.Options{})
	var nn *initiator.NotNVMeTCPError
	if !errors.As(err, &nn) || !strings.Contains(err.Error(), "is not speaking NVMe/TCP (first bytes: 'HTTP/1.0 ...')") {
		t.Errorf("HTTP port: %v (%T)", err, err)
	}
	_, err = initiator.Discover(context.Background(), silent, initiator.Options{Timeout: 300 * time.Millisecond})
	var ni *initiator.NoICRespError
	_, port, _ := net.SplitHostPort(silent)
	if !errors.As(err, &ni) || !strings.Contains(err.Error(), "within 300ms: is "+port+" an NVMe/TCP port?") {
		t.Errorf("silent port: %v (%T)", err, err)
	}
}

// TestHostTraddr: connections leave from the address asked for.
func TestHostTraddr(t *testing.T) {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	tg := targettest.Start(t, cfg)
	peers := make(chan string, 1)
	// A forwarder in front of the target records the peer address.
	fwd := testnet.Serve(t, func(nc net.Conn) {
		select {
		case peers <- nc.RemoteAddr().String():
		default:
		}
		up, err := net.Dial("tcp", tg.Addrs()[0].String())
		if err != nil {
			return
		}
		defer up.Close()
		// The host's close ends the target's side too: a controller whose
		// host shut it down has no keep-alive timer to end it.
		go func() { _, _ = io.Copy(up, nc); _ = up.Close() }()
		_, _ = io.Copy(nc, up)
	})
	c, err := initiator.Connect(context.Background(), fwd, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: -1, HostTraddr: "127.0.0.2", TOS: 0x10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := <-peers; !strings.HasPrefix(p, "127.0.0.2:") {
		t.Errorf("connection from %s, want 127.0.0.2", p)
	}
	// SO_BINDTODEVICE needs CAP_NET_RAW before Linux 5.7.
	c2, err := initiator.Connect(context.Background(), fwd, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: -1, HostIface: "lo"})
	switch {
	case err != nil && strings.Contains(err.Error(), "operation not permitted"):
		t.Logf("binding to lo: %v (no privilege for SO_BINDTODEVICE here)", err)
	case err != nil:
		t.Errorf("binding to lo: %v", err)
	default:
		c2.Close()
	}
	_, err = initiator.Connect(context.Background(), fwd, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: -1, HostIface: "nosuch0"})
	if err == nil || !strings.Contains(err.Error(), "bind to interface nosuch0") {
		t.Errorf("unknown interface: %v", err)
	}
}
