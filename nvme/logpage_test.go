package nvme

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"
)

// sqeBytes encodes s for comparison with golden hex.
func sqeBytes(s SQE) []byte { return s.Append(nil) }

func checkSQE(t *testing.T, name string, got SQE, golden string) {
	t.Helper()
	want := mustHex(t, golden)
	if b := sqeBytes(got); !bytes.Equal(b, want) {
		t.Errorf("%s:\n got %x\nwant %x", name, b, want)
	}
	var d SQE
	if err := d.Decode(want); err != nil || d != got {
		t.Errorf("%s: decode of golden = %+v, %v", name, d, err)
	}
}

func TestGetLogPageCmdGolden(t *testing.T) {
	// The Linux host reading the discovery log header with RAE.
	s := GetLogPageCmd(LogDiscovery, 0, 0, 0, 1024)
	SetRAE(&s)
	s.CID = 17
	checkSQE(t, "discovery header", s,
		"0240110000000000000000000000000000000000000000000000000000000000000400000000005a7080ff000000000000000000000000000000000000000000")

	// ANA log, 8208 bytes, NSID FFFFFFFFh.
	s = GetLogPageCmd(LogANA, 0xFFFFFFFF, 0, 0, 8208)
	s.CID = 28
	checkSQE(t, "ANA", s,
		"02401c00ffffffff000000000000000000000000000000000000000000000000102000000000005a0c0003080000000000000000000000000000000000000000")

	// SMART log, 512 bytes.
	s = GetLogPageCmd(LogSMART, 0xFFFFFFFF, 0, 0, 512)
	s.CID = 29
	checkSQE(t, "SMART", s,
		"02401d00ffffffff000000000000000000000000000000000000000000000000000200000000005a02007f000000000000000000000000000000000000000000")

	// nvme-cli reading the ANA log in pieces: 16 bytes at offset 0x2000.
	s = GetLogPageCmd(LogANA, 0, 0, 0x2000, 16)
	SetRAE(&s)
	s.CID = 12315
	checkSQE(t, "ANA chunk", s,
		"02401b3000000000000000000000000000000000000000000000000000000000100000000000005a0c8003000000000000200000000000000000000000000000")

	if LogPageLID(&s) != LogANA || LogPageLength(&s) != 16 || LogPageOffset(&s) != 0x2000 ||
		!LogPageRAE(&s) || LogPageLSP(&s) != 0 {
		t.Errorf("decoders: lid %d len %d off %d", LogPageLID(&s), LogPageLength(&s), LogPageOffset(&s))
	}
}

func TestGetLogPageCmdFields(t *testing.T) {
	// NUMD above 16 bits splits into NUMDL and NUMDU; LSP is 7 bits.
	s := GetLogPageCmd(0x0C, 1, ANALogRGO|0x80, 0x1_0000_0004, 0x40000*4+8)
	numd := uint32(0x40000 + 1)
	if s.CDW10 != uint32(0x0C)|1<<8|(numd&0xFFFF)<<16 || s.CDW11 != numd>>16 {
		t.Errorf("CDW10 %#x CDW11 %#x", s.CDW10, s.CDW11)
	}
	if s.CDW12 != 4 || s.CDW13 != 1 || LogPageOffset(&s) != 0x1_0000_0004 {
		t.Errorf("LPOL/LPOU %#x %#x", s.CDW12, s.CDW13)
	}
	if LogPageLSP(&s) != ANALogRGO || LogPageRAE(&s) || LogPageNUMD(&s) != numd {
		t.Errorf("LSP %#x", LogPageLSP(&s))
	}
	if LogPageLength(&s) != 0x40000*4+8 || DataLength(&s) != LogPageLength(&s) {
		t.Errorf("length %d data %d", LogPageLength(&s), DataLength(&s))
	}
	// Lengths round up to dwords; 0 is one dword.
	for _, c := range []struct{ in, want uint32 }{{0, 4}, {1, 4}, {4, 4}, {5, 8}, {math.MaxUint32, math.MaxUint32}} {
		s := GetLogPageCmd(1, 0, 0, 0, c.in)
		if LogPageLength(&s) != c.want || DataLength(&s) != c.want {
			t.Errorf("length %d -> %d / %d, want %d", c.in, LogPageLength(&s), DataLength(&s), c.want)
		}
	}
	s.CDW10, s.CDW11 = 0xFFFF0000, 0xFFFF
	if LogPageLength(&s) != math.MaxUint32 {
		t.Error("NUMD max must saturate")
	}
	s.CDW11 = 0xABCD0000
	s.CDW14 = 0x02000000
	if LogPageLSI(&s) != 0xABCD || LogPageCSI(&s) != 2 {
		t.Error("LSI/CSI")
	}
}

func TestErrorLogEntry(t *testing.T) {
	e := ErrorLogEntry{
		ErrorCount: 0x0102030405060708, SQID: 0x090A, CID: 0x0B0C,
		Status: StatusDNR | StatusInvalidField, ParamErrorLocation: 0x0D0E,
		LBA: 0x1112131415161718, NSID: 0x191A1B1C, VSIA: 0x1D, TRTYPE: TRTypeTCP, CSI: 2,
		Opcode: 0x06, CommandSpecific: 0x2122232425262728, TTSI: 0x292A, LogPageVersion: 1,
	}
	b := e.Append(nil)
	want := mustHex(t, "0807060504030201"+"0a09"+"0c0b"+"0480"+"0e0d"+"1817161514131211"+"1c1b1a19"+
		"1d"+"03"+"02"+"06"+"2827262524232221"+"2a29"+"000000000000000000000000000000000000000000"+"01")
	if !bytes.Equal(b, want) {
		t.Errorf("got  %x\nwant %x", b, want)
	}
	var d ErrorLogEntry
	if err := d.Decode(b); err != nil || d != e {
		t.Errorf("round trip %+v %v", d, err)
	}
	for n := range ErrorLogEntrySize {
		if d.Decode(b[:n]) != ErrShort {
			t.Fatal("short")
		}
	}
}

func TestSMARTLog(t *testing.T) {
	// nvmet's SMART log after a few reads.
	raw := sparse(t, SMARTLogSize, map[int]string{32: "01", 64: "06"})
	var l SMARTLog
	if err := l.Decode(raw); err != nil || l.DataUnitsRead != 1 || l.HostReadCommands != 6 {
		t.Fatalf("%+v %v", l, err)
	}
	if !bytes.Equal(l.Append(nil), raw) {
		t.Error("re-encoding differs")
	}
	l = SMARTLog{
		CriticalWarning: SMARTCritSpare, CompositeTemperature: 0x0142, AvailableSpare: 100,
		AvailableSpareThreshold: 10, PercentageUsed: 3, EnduranceGroupCW: 1,
		DataUnitsRead: 1, DataUnitsWritten: 2, HostReadCommands: 3, HostWriteCommands: 4,
		ControllerBusyTime: 5, PowerCycles: 6, PowerOnHours: 7, UnsafeShutdowns: 8,
		MediaErrors: 9, NumErrLogEntries: 10, WarningTempTime: 11, CriticalCompTime: 12,
		TemperatureSensor: [8]uint16{1, 2, 3, 4, 5, 6, 7, 8}, TMT1TC: 13, TMT2TC: 14, TTTMT1: 15, TTTMT2: 16,
	}
	b := l.Append(nil)
	le := binary.LittleEndian
	if le.Uint16(b[1:]) != 0x0142 || b[3] != 100 || b[5] != 3 {
		t.Error("header offsets")
	}
	for i := range 10 {
		if le.Uint64(b[32+16*i:]) != uint64(i+1) || le.Uint64(b[40+16*i:]) != 0 {
			t.Errorf("counter %d", i)
		}
	}
	if le.Uint32(b[192:]) != 11 || le.Uint32(b[196:]) != 12 || le.Uint16(b[214:]) != 8 || le.Uint32(b[228:]) != 16 {
		t.Error("tail offsets")
	}
	var d SMARTLog
	if err := d.Decode(b); err != nil || d != l {
		t.Errorf("round trip %+v", d)
	}
	b[32+15] = 1 // a 128-bit counter beyond 2^64 saturates
	_ = d.Decode(b)
	if d.DataUnitsRead != math.MaxUint64 {
		t.Errorf("saturation: %d", d.DataUnitsRead)
	}
	for n := range SMARTLogSize {
		if d.Decode(b[:n]) != ErrShort {
			t.Fatal("short")
		}
	}
}

func TestFirmwareSlotLog(t *testing.T) {
	l := FirmwareSlotLog{AFI: 0x11, FRS: [7]string{"6.12.117", "", "abc"}}
	b := l.Append(nil)
	if b[0] != 0x11 || string(b[8:16]) != "6.12.117" || !bytes.Equal(b[16:24], make([]byte, 8)) ||
		string(b[24:32]) != "abc     " {
		t.Errorf("%x", b[:64])
	}
	var d FirmwareSlotLog
	if err := d.Decode(b); err != nil || d != l {
		t.Errorf("%+v", d)
	}
	for n := range FirmwareSlotLogSize {
		if d.Decode(b[:n]) != ErrShort {
			t.Fatal("short")
		}
	}
}

func TestChangedNSList(t *testing.T) {
	b := AppendChangedNSList(nil, []uint32{5, 7})
	if len(b) != 4096 || !reflect.DeepEqual(DecodeChangedNSList(b), []uint32{5, 7}) {
		t.Error("short list")
	}
	b = AppendChangedNSList(nil, make([]uint32, 1025))
	if len(b) != 4096 || binary.LittleEndian.Uint32(b) != ChangedNSListOverflow || binary.LittleEndian.Uint32(b[4:]) != 0 {
		t.Errorf("overflow: %x", b[:8])
	}
	if got := DecodeChangedNSList(b); !reflect.DeepEqual(got, []uint32{ChangedNSListOverflow}) {
		t.Errorf("decode overflow %v", got)
	}
}

func TestCommandsEffectsLog(t *testing.T) {
	// nvmet's Commands Supported and Effects log.
	raw := sparse(t, CommandsEffectsLogSize, map[int]string{
		8:    "0100000000000000000000000000000001000000000000000100000001000000010000000000000001",
		96:   "01",
		1024: "010000000300000001",
		1056: "0300000001",
	})
	var l CommandsEffectsLog
	if err := l.Decode(raw); err != nil {
		t.Fatal(err)
	}
	if l.ACS[AdminGetLogPage]&CmdEffectsCSUPP == 0 || l.ACS[AdminIdentify] != CmdEffectsCSUPP ||
		l.IOCS[CmdWrite] != CmdEffectsCSUPP|CmdEffectsLBCC || l.IOCS[CmdRead] != CmdEffectsCSUPP ||
		l.IOCS[CmdWriteZeroes] != CmdEffectsCSUPP|CmdEffectsLBCC || l.ACS[AdminKeepAlive] != CmdEffectsCSUPP {
		t.Errorf("ACS %v IOCS %v", l.ACS[:32], l.IOCS[:16])
	}
	b := make([]byte, CommandsEffectsLogSize)
	for i := range b {
		b[i] = 0xAA
	}
	l.Put(b)
	if !bytes.Equal(b, raw) {
		t.Error("re-encoding differs / reserved not zeroed")
	}
	for n := range CommandsEffectsLogSize {
		if l.Decode(b[:n]) != ErrShort {
			t.Fatal("short")
		}
	}
}

// nvmetANALog is nvmet's ANA log: one optimized group with NSIDs 1 and 2,
// read with a 8208-byte buffer.
var nvmetANALog = map[int]string{
	8: "010000000000000001000000020000000000000000000000010000000000000000000000000000000100000002",
}

func TestANALogGolden(t *testing.T) {
	raw := sparse(t, 8208, nvmetANALog)
	l, err := DecodeANALog(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &ANALog{Groups: []ANAGroupDescriptor{{ANAGRPID: 1, State: ANAOptimized, NSIDs: []uint32{1, 2}}}}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("decoded %+v", l)
	}
	out := l.Append(nil, false)
	if len(out) != l.Size(false) || len(out) != 16+32+8 || !bytes.Equal(out, raw[:len(out)]) {
		t.Errorf("re-encoding %x", out)
	}
	// Return Groups Only: NNSID 0 and no NSIDs.
	rgo := l.Append(nil, true)
	wantRGO := mustHex(t, "0000000000000000"+"0100"+"000000000000"+
		"01000000"+"00000000"+"0000000000000000"+"01"+"000000000000000000000000000000")
	if !bytes.Equal(rgo, wantRGO) || len(rgo) != l.Size(true) {
		t.Errorf("RGO:\n got %x\nwant %x", rgo, wantRGO)
	}
	d, err := DecodeANALog(rgo)
	if err != nil || len(d.Groups) != 1 || d.Groups[0].NSIDs != nil {
		t.Errorf("RGO decode %+v %v", d, err)
	}
}

func TestANALogRoundTrip(t *testing.T) {
	l := &ANALog{CHGCNT: 0x1122334455667788, Groups: []ANAGroupDescriptor{
		{ANAGRPID: 1, CHGCNT: 5, State: ANAOptimized, NSIDs: []uint32{1, 3, 5}},
		{ANAGRPID: 2, CHGCNT: 6, State: ANAInaccessible},
		{ANAGRPID: 0xFFFFFFFF, CHGCNT: 7, State: ANAChange, NSIDs: []uint32{2}},
	}}
	b := l.Append([]byte{9}, false)[1:]
	d, err := DecodeANALog(b)
	if err != nil || !reflect.DeepEqual(d, l) {
		t.Fatalf("%+v %v", d, err)
	}
	le := binary.LittleEndian
	if le.Uint16(b[8:]) != 3 || le.Uint32(b[16+4:]) != 3 || b[16+16] != ANAOptimized {
		t.Error("NGRPS/NNSID/state offsets")
	}
	// Truncations: an error or, on a group boundary past the header... never
	// a panic, and never success with fewer groups than NGRPS.
	for n := range len(b) {
		d, err := DecodeANALog(b[:n])
		if err == nil {
			t.Errorf("n=%d decoded %+v", n, d)
		}
	}
}

func TestANALogHostile(t *testing.T) {
	// NGRPS claims 65535 groups in a 48-byte buffer.
	b := make([]byte, 48)
	binary.LittleEndian.PutUint16(b[8:], 0xFFFF)
	if _, err := DecodeANALog(b); !errors.Is(err, ErrANALog) {
		t.Errorf("NGRPS: %v", err)
	}
	// NNSID claims 2^32-1 NSIDs.
	binary.LittleEndian.PutUint16(b[8:], 1)
	binary.LittleEndian.PutUint32(b[16+4:], 0xFFFFFFFF)
	if _, err := DecodeANALog(b); !errors.Is(err, ErrANALog) {
		t.Errorf("NNSID: %v", err)
	}
	if _, err := DecodeANALog(b[:15]); err != ErrShort {
		t.Errorf("header: %v", err)
	}
	// No groups.
	binary.LittleEndian.PutUint16(b[8:], 0)
	if l, err := DecodeANALog(b[:16]); err != nil || l.Groups != nil {
		t.Errorf("empty: %+v %v", l, err)
	}
}

func TestANAStateString(t *testing.T) {
	for s, want := range map[uint8]string{1: "optimized", 2: "non-optimized", 3: "inaccessible",
		4: "persistent-loss", 0xF: "change", 9: "unknown(0x9)"} {
		if got := ANAStateString(s); got != want {
			t.Errorf("%d: %q", s, got)
		}
	}
}

func TestLogPageAllocs(t *testing.T) {
	b := make([]byte, 4096)
	e := ErrorLogEntry{ErrorCount: 1}
	var s SMARTLog
	var c CommandsEffectsLog
	n := testing.AllocsPerRun(100, func() {
		e.Put(b)
		_ = e.Decode(b)
		s.Put(b)
		_ = s.Decode(b)
		c.Put(b)
		_ = c.Decode(b)
	})
	if n != 0 {
		t.Errorf("allocs = %v", n)
	}
}
