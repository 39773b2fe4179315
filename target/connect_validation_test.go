package target

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// TestConnectValidation: the Connect and Fabrics refusals NVMe Base 2.2
// asks for (suites FAB-NQN-*, FAB-CNTLID-001, FAB-AUTH-006,
// FAB-FCTYPE-001, FAB-ADMDISC-001, DISC-DCON-001), each with the status
// and, for Connect Invalid Parameters, the field the text names.
func TestConnectValidation(t *testing.T) {
	tg := startTarget(t, testConfig())
	addr := tg.Addrs()[0]

	// 6.3: a Host NQN with a syntax error (section 4.7).
	long := "nqn.2014-08.io.nvmftest:" + string(bytes.Repeat([]byte{'h'}, 216))
	noNUL := bytes.Repeat([]byte{'h'}, 256)
	copy(noNUL, "nqn.2014-08.io.nvmftest:")
	for name, field := range map[string][]byte{"240 bytes": []byte(long), "no NUL": noNUL, "no nqn. prefix": []byte("iqn.2014-08.io.nvmftest:h")} {
		d := connectData(testNQN, testHost, nvme.CNTLIDDynamic)
		f := d[nvme.ConnectDataOffHOSTNQN : nvme.ConnectDataOffHOSTNQN+256]
		clear(f)
		copy(f, field)
		cqe := dial(t, addr, 0).exec(connectSQE(0, 31, 0, 0), d, true, nil)
		wantStatus(t, cqe, nvme.StatusConnectInvalidParameters)
		if in, off := nvme.DecodeConnectInvalidParam(cqe.DW0); !in || off != nvme.ConnectDataOffHOSTNQN {
			t.Errorf("Host NQN %s refused at data %v offset %d, want the HOSTNQN", name, in, off)
		}
	}

	// An empty Host NQN field is what SPDK's host tools send by default
	// (spdk_nvme_perf, spdk_nvme_identify without a host NQN): it is not
	// refused for syntax, so they connect where any host may.
	mustOK(t, dial(t, addr, 0).exec(connectSQE(0, 31, 0, 0), connectData(testNQN, "", nvme.CNTLIDDynamic), true, nil))

	// 6.3: CNTLID FFF0h to FFFDh.
	for _, id := range []uint16{0xFFF0, 0xFFFD} {
		cqe := dial(t, addr, 0).connect(testNQN, 0, id, 0)
		wantStatus(t, cqe, nvme.StatusConnectInvalidParameters)
		if in, off := nvme.DecodeConnectInvalidParam(cqe.DW0); !in || off != nvme.ConnectDataOffCNTLID {
			t.Errorf("CNTLID %#x refused at data %v offset %d, want the CNTLID", id, in, off)
		}
	}

	// 6.3: Host NQN = Subsystem NQN, DH-HMAC-CHAP supported.
	cqe := dial(t, addr, 0).exec(connectSQE(0, 31, 0, 0), connectData(testNQN, testNQN, nvme.CNTLIDDynamic), true, nil)
	wantStatus(t, cqe, nvme.StatusConnectInvalidHost)

	// Fig. 94: a reserved FCTYPE; 6.4: Disconnect on an Admin Queue, of
	// an I/O and of a discovery controller, which keep serving.
	for _, nqn := range []string{testNQN, nvme.DiscoveryNQN} {
		c := dial(t, addr, 0)
		mustOK(t, c.connect(nqn, 0, nvme.CNTLIDDynamic, 0))
		for _, ft := range []uint32{0x02, 0x07} {
			sqe := nvme.DisconnectCmd(0)
			sqe.NSID = ft
			wantStatus(t, c.exec(sqe, nil, false, nil), nvme.StatusInvalidField)
		}
		wantStatus(t, c.exec(nvme.DisconnectCmd(0), nil, false, nil), nvme.StatusInvalidQueueType)
		mustOK(t, c.exec(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil, false, nil))
	}
}

// TestDHCHAPGate: NVMe Base 2.2 3.3.2.3 on a queue whose Connect asked
// for authentication: every command but Authentication Send/Receive gets
// Authentication Required until it succeeds, and after success the
// authentication commands get Command Sequence Error; a reserved SECP is
// an Invalid Field (6.1, 6.2).
func TestDHCHAPGate(t *testing.T) {
	key := nvme.NewDHCHAPKey(nvme.HashSHA256)
	tg := authTarget(t, DHCHAPHost{Key: key.String()})
	o := initiator.Options{HostNQN: authHost, DHCHAPSecret: key.String(), Timeout: 5 * time.Second}
	r, err := initiator.DialRaw(context.Background(), tg.Addrs()[0].String(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Initialize(tcp.ICReq{}); err != nil {
		t.Fatal(err)
	}
	cqe, err := r.ConnectAdmin(testNQN, authHost)
	if err != nil || cqe.DW0&nvme.ConnectAuthReqATR == 0 {
		t.Fatalf("Connect: %v, DW0 %#x", err, cqe.DW0)
	}
	status := func(sqe nvme.SQE, data []byte) nvme.Status {
		_, _, err := r.Command(sqe, data)
		var st nvme.Status
		if err != nil && !errors.As(err, &st) {
			t.Fatal(err)
		}
		return st.Code()
	}
	if st := status(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil); st != nvme.StatusAuthenticationRequired {
		t.Errorf("Property Get before authentication: %v", st)
	}
	send := nvme.AuthSendCmd(0, 8)
	send.DPTR = nvme.SGLDescriptor{}
	send.CDW10 = send.CDW10&^0xFF000000 | 0x80<<24
	if st := status(send, make([]byte, 8)); st != nvme.StatusInvalidField {
		t.Errorf("Authentication Send with SECP 80h: %v", st)
	}
	if err := r.Authenticate(0, o, testNQN); err != nil {
		t.Fatal(err)
	}
	if st := status(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil); st != nvme.StatusSuccess {
		t.Errorf("Property Get after authentication: %v", st)
	}
	// A second transaction re-authenticates the queue (as Linux and SPDK
	// allow; see prepareAuth), and the queue stays usable.
	if err := r.Authenticate(0, o, testNQN); err != nil {
		t.Errorf("re-authentication: %v", err)
	}
	if st := status(nvme.PropertyGetCmd(0, nvme.PropCAP, true), nil); st != nvme.StatusSuccess {
		t.Errorf("Property Get after re-authentication: %v", st)
	}
}
