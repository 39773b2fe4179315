package nvme

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommandsGolden(t *testing.T) {
	s := IdentifyCmd(CNSController, 0, 0)
	s.CID = 26
	checkSQE(t, "identify controller", s,
		"06401a0000000000000000000000000000000000000000000000000000000000001000000000005a010000000000000000000000000000000000000000000000")
	s = IdentifyCmd(CNSNSDescriptorList, 2, 0)
	s.CID = 16
	checkSQE(t, "identify ns descriptors", s,
		"0640100002000000000000000000000000000000000000000000000000000000001000000000005a030000000000000000000000000000000000000000000000")

	// 4 KiB write with in-capsule data, then read it back.
	s = WriteCmd(2, 8, 8)
	SetInCapsule(&s, 4096)
	s.CID = 7
	checkSQE(t, "write in-capsule", s,
		"01400700020000000000000000000000000000000000000000000000000000000010000000000001080000000000000007000000000000000000000000000000")
	s = ReadCmd(2, 8, 8)
	SetDataLength(&s, 4096)
	s.CID = 8
	checkSQE(t, "read", s,
		"0240080002000000000000000000000000000000000000000000000000000000001000000000005a080000000000000007000000000000000000000000000000")
	// 128 KiB write by R2T/H2CData.
	s = WriteCmd(2, 0, 256)
	SetDataLength(&s, 128<<10)
	s.CID = 81
	checkSQE(t, "write r2t", s,
		"0140510002000000000000000000000000000000000000000000000000000000000002000000005a0000000000000000ff000000000000000000000000000000")
	s = FlushCmd(2)
	s.CID = 11
	checkSQE(t, "flush", s,
		"00400b0002000000000000000000000000000000000000000000000000000000000000000000005a000000000000000000000000000000000000000000000000")
	s = AsyncEventRequestCmd()
	s.CID = 31
	checkSQE(t, "AER", s,
		"0c401f0000000000000000000000000000000000000000000000000000000000000000000000005a000000000000000000000000000000000000000000000000")
}

func TestCommandFields(t *testing.T) {
	s := ReadCmd(1, 0x0000_0012_3456_789A, 65536)
	if s.CDW10 != 0x3456789A || s.CDW11 != 0x12 || s.CDW12 != 0xFFFF || s.SLBA() != 0x123456789A || s.NLB() != 65536 {
		t.Errorf("read %+v", s)
	}
	s = WriteCmd(1, 0, 1)
	SetFUA(&s)
	if !s.FUA() || s.CDW12 != 1<<30 || s.NLB() != 1 || s.Opcode != CmdWrite {
		t.Errorf("write FUA %+v", s)
	}
	s = WriteZeroesCmd(3, 100, 16, true)
	if s.Opcode != CmdWriteZeroes || s.CDW12 != 15|1<<25 || DataLength(&s) != 0 || s.SLBA() != 100 {
		t.Errorf("write zeroes %+v", s)
	}
	s = CompareCmd(3, 5, 2)
	if s.Opcode != CmdCompare || s.CDW12 != 1 || !IsWrite(&s) {
		t.Errorf("compare %+v", s)
	}
	s = DSMCmd(4, 256, true)
	if s.Opcode != CmdDSM || s.CDW10 != 255 || s.CDW11 != DSMAD || DataLength(&s) != 4096 || s.NSID != 4 {
		t.Errorf("dsm %+v", s)
	}
	s = DSMCmd(4, 1, false)
	if s.CDW10 != 0 || s.CDW11 != 0 || DataLength(&s) != 16 {
		t.Errorf("dsm 1 %+v", s)
	}
	s = AbortCmd(2, 0x1234)
	if s.Opcode != AdminAbort || s.CDW10 != 0x12340002 {
		t.Errorf("abort %+v", s)
	}
	s = KeepAliveCmd()
	if s.Opcode != AdminKeepAlive || s.Flags != PSDTSGL || s.DPTR.Type != SGLTransportDataBlock {
		t.Errorf("keep alive %+v", s)
	}
	s = IdentifyCmd(CNSActiveNSList, 0, 0xABCD)
	if IdentifyCNS(&s) != CNSActiveNSList || IdentifyCNTID(&s) != 0xABCD || DataLength(&s) != 4096 {
		t.Errorf("identify %+v", s)
	}
	s.Flags |= FuseFirst
	SetInCapsule(&s, 12)
	if s.Flags != PSDTSGL|FuseFirst || s.DPTR != (SGLDescriptor{Length: 12, Type: SGLDataBlockOffset}) {
		t.Errorf("SetInCapsule keeps FUSE: %+v", s)
	}
}

func TestDSMRange(t *testing.T) {
	r := DSMRange{CATTR: 0x01020304, NLB: 0x05060708, SLBA: 0x090A0B0C0D0E0F10}
	b := r.Append([]byte{0xFF})
	if !bytes.Equal(b[1:], mustHex(t, "0403020108070605100f0e0d0c0b0a09")) {
		t.Errorf("%x", b)
	}
	var d DSMRange
	if err := d.Decode(b[1:]); err != nil || d != r {
		t.Errorf("%+v", d)
	}
	for n := range DSMRangeSize {
		if d.Decode(b[1:1+n]) != ErrShort {
			t.Fatal("short")
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.Put(b); _ = d.Decode(b) }); n != 0 {
		t.Errorf("allocs %v", n)
	}
}

func TestDataDirection(t *testing.T) {
	for _, c := range []struct {
		opc     uint8
		out, in bool
	}{
		{CmdFlush, false, false}, {CmdWrite, true, false}, {CmdRead, false, true},
		{CmdCompare, true, false}, {CmdDSM, true, false}, {CmdWriteZeroes, false, false},
		{AdminGetLogPage, false, true}, {AdminIdentify, false, true}, {AdminSetFeatures, true, false},
		{AdminGetFeatures, false, true}, {AdminFabrics, true, true},
	} {
		if IsDataOut(c.opc) != c.out || IsDataIn(c.opc) != c.in {
			t.Errorf("opcode %#x: out %v in %v", c.opc, IsDataOut(c.opc), IsDataIn(c.opc))
		}
	}
	for fct, w := range map[uint8]bool{FabricsPropertySet: false, FabricsConnect: true, FabricsPropertyGet: false,
		FabricsAuthSend: true, FabricsAuthReceive: false, FabricsDisconnect: false} {
		s := fabricsCmd(0, fct)
		if IsWrite(&s) != w {
			t.Errorf("fctype %#x IsWrite %v", fct, IsWrite(&s))
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct {
		admin bool
		opc   uint8
		want  string
	}{
		{true, AdminIdentify, "Identify"}, {true, AdminGetLogPage, "Get Log Page"},
		{true, AdminKeepAlive, "Keep Alive"}, {true, AdminFabrics, "Fabrics Command"},
		{false, CmdRead, "Read"}, {false, CmdWriteZeroes, "Write Zeroes"},
		{false, CmdDSM, "Dataset Management"}, {true, 0xC5, "Vendor Specific (0xC5)"},
		{true, 0x7B, "Unknown Admin Command (0x7B)"}, {false, 0x03, "Unknown I/O Command (0x03)"},
		{false, 0x81, "Vendor Specific (0x81)"},
	} {
		if got := OpcodeName(c.admin, c.opc); got != c.want {
			t.Errorf("OpcodeName(%v, %#x) = %q, want %q", c.admin, c.opc, got, c.want)
		}
	}
	for i := range 256 {
		if OpcodeName(true, uint8(i)) == "" || OpcodeName(false, uint8(i)) == "" || FabricsTypeName(uint8(i)) == "" {
			t.Fatalf("empty name for %#x", i)
		}
	}
	s := (&Connect{}).SQE(0)
	if CommandName(false, &s) != "Connect" || !strings.HasPrefix(FabricsTypeName(0x33), "Unknown") {
		t.Error("fabrics names")
	}
	s = ReadCmd(1, 0, 1)
	if CommandName(false, &s) != "Read" || CommandName(true, &s) != "Get Log Page" {
		t.Error("CommandName")
	}
}
