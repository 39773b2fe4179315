package nvme

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// The Linux host's admin queue Connect to nvmet: SQSIZE 31, KATO 5000 ms,
// 1024 bytes of in-capsule data (Data Block / Offset SGL).
const linuxConnectAdminSQE = "7f400000010000000000000000000000000000000000000000000000000000000004000000000001000000001f00000088130000000000000000000000000000"

// The Linux host's Connect for I/O queue 1: SQSIZE 127, KATO 0.
const linuxConnectIOSQE = "7f400000010000000000000000000000000000000000000000000000000000000004000000000001000001007f00000000000000000000000000000000000000"

var linuxConnectData = map[int]string{
	6:   "4000800000000000c0deffff",
	256: "6e716e2e323032362d31312e696f2e706565723a6b65726e656c",
	512: "6e716e2e323031342d30382e6f72672e6e766d657870726573733a757569643a30303030303030302d303030302d343030302d383030302d303030303030303063306465",
}

func linuxHostID() [16]byte {
	return [16]byte{0, 0, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0xc0, 0xde}
}

func TestConnectGolden(t *testing.T) {
	c := Connect{QID: 0, SQSIZE: 31, KATO: 5000}
	checkSQE(t, "admin connect", c.SQE(0), linuxConnectAdminSQE)
	c = Connect{QID: 1, SQSIZE: 127}
	checkSQE(t, "io connect", c.SQE(0), linuxConnectIOSQE)

	d := ConnectData{
		HostID:  linuxHostID(),
		CNTLID:  CNTLIDDynamic,
		SubNQN:  "nqn.2026-11.io.peer:kernel",
		HostNQN: "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000c0de",
	}
	raw := sparse(t, ConnectDataSize, linuxConnectData)
	if b := d.Append(nil); !bytes.Equal(b, raw) {
		t.Errorf("connect data:\n got %x\nwant %x", b[:32], raw[:32])
	}
	var got ConnectData
	if err := got.Decode(raw); err != nil || got != d {
		t.Errorf("decode %+v %v", got, err)
	}
	// The I/O queue Connect names the controller the admin queue got.
	raw[16], raw[17] = 1, 0
	_ = got.Decode(raw)
	if got.CNTLID != 1 {
		t.Errorf("CNTLID %d", got.CNTLID)
	}
}

func TestConnectFields(t *testing.T) {
	c := Connect{RECFMT: 0x0102, QID: 0x0304, SQSIZE: 0x0506, CATTR: CATTRDisableSQFlow, KATO: 0x0A0B0C0D}
	s := c.SQE(0xBEEF)
	b := s.Append(nil)
	le := binary.LittleEndian
	if b[0] != 0x7F || b[1] != PSDTSGL || le.Uint16(b[2:]) != 0xBEEF || b[4] != FabricsConnect {
		t.Errorf("header %x", b[:8])
	}
	if le.Uint16(b[ConnectOffRECFMT:]) != 0x0102 || le.Uint16(b[ConnectOffQID:]) != 0x0304 ||
		le.Uint16(b[ConnectOffSQSIZE:]) != 0x0506 || b[ConnectOffCATTR] != 4 || b[47] != 0 ||
		le.Uint32(b[ConnectOffKATO:]) != 0x0A0B0C0D {
		t.Errorf("fields %x", b[40:52])
	}
	if le.Uint32(b[32:]) != 1024 || b[39] != SGLDataBlockOffset || le.Uint64(b[24:]) != 0 {
		t.Errorf("DPTR %x", b[24:40])
	}
	if got := DecodeConnect(&s); got != c {
		t.Errorf("DecodeConnect %+v", got)
	}
	if DataLength(&s) != ConnectDataSize || !IsWrite(&s) {
		t.Error("Connect moves 1024 bytes host to controller")
	}
	var d ConnectData
	for n := range ConnectDataSize {
		if d.Decode(make([]byte, n)) != ErrShort {
			t.Fatal("short")
		}
	}
	// Put zeroes reserved bytes.
	buf := bytes.Repeat([]byte{0xEE}, ConnectDataSize)
	(&ConnectData{}).Put(buf)
	if !bytes.Equal(buf, make([]byte, ConnectDataSize)) {
		t.Error("reserved not zeroed")
	}
}

func TestConnectInvalidParam(t *testing.T) {
	// nvmet: IPO_IATTR_CONNECT_DATA(cntlid) and IPO_IATTR_CONNECT_SQE(qid).
	if v := ConnectInvalidParam(true, ConnectDataOffCNTLID); v != 0x00010010 {
		t.Errorf("data cntlid %#x", v)
	}
	if v := ConnectInvalidParam(true, ConnectDataOffSUBNQN); v != 0x00010100 {
		t.Errorf("data subnqn %#x", v)
	}
	if v := ConnectInvalidParam(false, ConnectOffQID); v != 42 {
		t.Errorf("sqe qid %#x", v)
	}
	if in, off := DecodeConnectInvalidParam(0x00010200); !in || off != ConnectDataOffHOSTNQN {
		t.Errorf("decode %v %d", in, off)
	}
	if in, off := DecodeConnectInvalidParam(ConnectOffSQSIZE); in || off != 44 {
		t.Errorf("decode %v %d", in, off)
	}
}

func TestPropertyGolden(t *testing.T) {
	// Property Get CAP (8 bytes) and nvmet's answer.
	s := PropertyGetCmd(1, PropCAP, true)
	checkSQE(t, "get CAP", s,
		"7f40010004000000000000000000000000000000000000000000000000000000000000000000005a010000000000000000000000000000000000000000000000")
	var c CQE
	_ = c.Decode(mustHex(t, "ff03000f200800000200000001000000"))
	cap := CAP(PropertyValue(&c))
	if cap != 0x000008200F0003FF {
		t.Fatalf("CAP %#x", uint64(cap))
	}
	if cap.MQES() != 1023 || cap.TO() != 15 || cap.CQR() || cap.CSS() != CSSNVM|CSSIOCS ||
		cap.MPSMIN() != 0 || cap.MPSMAX() != 0 || cap.DSTRD() != 0 || cap.AMS() != 0 || cap.NSSRS() {
		t.Errorf("CAP fields")
	}
	if MakeCAP(1023, 15, CSSNVM|CSSIOCS) != cap {
		t.Errorf("MakeCAP %#x", uint64(MakeCAP(1023, 15, CSSNVM|CSSIOCS)))
	}
	var c2 CQE
	SetPropertyValue(&c2, uint64(cap))
	if c2.DW0 != 0x0F0003FF || c2.DW1 != 0x820 {
		t.Error("SetPropertyValue")
	}

	// Property Set CC = 0x460060 (IOCQES 4, IOSQES 6, CSS 6), then enable.
	s = PropertySetCmd(4096, PropCC, false, 0x00460060)
	checkSQE(t, "set CC", s,
		"7f40001000000000000000000000000000000000000000000000000000000000000000000000005a000000001400000060004600000000000000000000000000")
	off, size8, val := DecodeProperty(&s)
	if off != PropCC || size8 || val != 0x00460060 {
		t.Errorf("DecodeProperty %#x %v %#x", off, size8, val)
	}
	// Property Get VS and nvmet's 1.3.
	s = PropertyGetCmd(12288, PropVS, false)
	checkSQE(t, "get VS", s,
		"7f40003004000000000000000000000000000000000000000000000000000000000000000000005a000000000800000000000000000000000000000000000000")
	_ = c.Decode(mustHex(t, "00030100000000000700000000300000"))
	if VersionString(c.DW0) != "1.3" || c.DW0 != MakeVersion(1, 3, 0) {
		t.Errorf("VS %q", VersionString(c.DW0))
	}
	if IsWrite(&s) {
		t.Error("Property Get is not a write")
	}

	s = PropertySetCmd(1, 0x1234, true, 0x1122334455667788)
	if off, size8, val := DecodeProperty(&s); off != 0x1234 || !size8 || val != 0x1122334455667788 ||
		s.CDW12 != 0x55667788 || s.CDW13 != 0x11223344 {
		t.Error("8-byte Property Set")
	}
}

func TestDisconnect(t *testing.T) {
	s := DisconnectCmd(7)
	b := s.Append(nil)
	want := mustHex(t, "7f40070008000000000000000000000000000000000000000000000000000000000000000000005a000000000000000000000000000000000000000000000000")
	if !bytes.Equal(b, want) {
		t.Errorf("got %x", b)
	}
	if CommandName(false, &s) != "Disconnect" {
		t.Error(CommandName(false, &s))
	}
}

func TestCAPAndVersion(t *testing.T) {
	c := MakeCAP(0xFFFF, 0xFF, 0xFF) | CAPCQR | CAPNSSRS | CAP(0xA)<<32 | CAP(3)<<17 | CAP(0x5)<<48 | CAP(0x9)<<52
	if c.MQES() != 0xFFFF || c.TO() != 0xFF || c.CSS() != 0xFF || !c.CQR() || !c.NSSRS() ||
		c.DSTRD() != 0xA || c.AMS() != 3 || c.MPSMIN() != 5 || c.MPSMAX() != 9 {
		t.Errorf("%#x", uint64(c))
	}
	for v, want := range map[uint32]string{MakeVersion(2, 0, 0): "2.0", MakeVersion(1, 4, 1): "1.4.1", 0: "0.0"} {
		if got := VersionString(v); got != want {
			t.Errorf("%#x: %q", v, got)
		}
	}
}

func TestFabricsAllocs(t *testing.T) {
	sqe := (&Connect{SQSIZE: 31, KATO: 5000}).SQE(0)
	cqe := CQE{DW0: 1, CID: 3, Status: StatusDNR | StatusConnectInvalidHost}
	d := ConnectData{HostID: linuxHostID(), CNTLID: 0xFFFF, SubNQN: "nqn.a", HostNQN: "nqn.b"}
	b := make([]byte, ConnectDataSize)
	if n := testing.AllocsPerRun(100, func() {
		sqe.Put(b)
		_ = sqe.Decode(b)
		cqe.Put(b)
		_ = cqe.Decode(b)
		d.Put(b)
	}); n != 0 {
		t.Errorf("SQE/CQE/ConnectData Put+Decode allocs = %v", n)
	}
	// Decoding allocates only the two NQN strings.
	d.Put(b)
	if n := testing.AllocsPerRun(100, func() { _ = d.Decode(b) }); n > 2 {
		t.Errorf("ConnectData.Decode allocs = %v", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		s := (&Connect{QID: 1}).SQE(9)
		_ = DecodeConnect(&s)
		s = PropertyGetCmd(1, PropCSTS, false)
		_, _, _ = DecodeProperty(&s)
	}); n != 0 {
		t.Errorf("builders allocs = %v", n)
	}
}

func TestConnectRefusedAtCNTLID(t *testing.T) {
	cip := StatusConnectInvalidParameters
	for _, tc := range []struct {
		cqe  CQE
		err  error
		want bool
	}{
		{CQE{DW0: ConnectInvalidParam(true, ConnectDataOffCNTLID)}, cip, true},
		{CQE{DW0: ConnectInvalidParam(true, ConnectDataOffCNTLID)}, fmt.Errorf("connect: %w", cip|StatusDNR), true},
		{CQE{DW0: ConnectInvalidParam(true, ConnectDataOffSUBNQN)}, cip, false},
		{CQE{DW0: ConnectInvalidParam(false, ConnectDataOffCNTLID)}, cip, false}, // offset 16 of the SQE, not the data
		{CQE{DW0: ConnectInvalidParam(true, ConnectDataOffCNTLID)}, StatusInvalidField, false},
		{CQE{}, nil, false},
	} {
		if got := ConnectRefusedAtCNTLID(tc.cqe, tc.err); got != tc.want {
			t.Errorf("%+v, %v: %v, want %v", tc.cqe, tc.err, got, tc.want)
		}
	}
}
