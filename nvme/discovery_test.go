package nvme

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// nvmetDiscoveryLog is nvmet's discovery log (3072 bytes): a current
// discovery subsystem entry and an NVM subsystem entry, both TCP/IPv4 on
// 10.0.2.15:4420, port 1, dynamic controllers, TREQ "SQ flow control
// disable supported".
var nvmetDiscoveryLog = map[int]string{
	0:    "030000000000000002",
	1024: "030103040100ffff20",
	1056: "34343230",
	1280: "6e716e2e323031342d30382e6f72672e6e766d657870726573732e646973636f76657279",
	1536: "31302e302e322e3135",
	2048: "030102040100ffff20",
	2080: "34343230",
	2304: "6e716e2e323032362d31312e696f2e706565723a6b65726e656c",
	2560: "31302e302e322e3135",
}

func nvmetDiscoveryWant() *DiscoveryLog {
	e := DiscoveryLogEntry{
		TRTYPE: TRTypeTCP, ADRFAM: AdrFamIPv4, SUBTYPE: SubtypeCurrentDiscovery,
		TREQ: TREQNotSpecified | TREQDisableSQFlow, PORTID: 1, CNTLID: CNTLIDDynamic, ASQSZ: 32,
		TRSVCID: "4420", SUBNQN: DiscoveryNQN, TRADDR: "10.0.2.15",
	}
	nvm := e
	nvm.SUBTYPE = SubtypeNVM
	nvm.SUBNQN = "nqn.2026-11.io.peer:kernel"
	return &DiscoveryLog{GENCTR: 3, NUMREC: 2, Entries: []DiscoveryLogEntry{e, nvm}}
}

func TestDiscoveryLogGolden(t *testing.T) {
	raw := sparse(t, 3072, nvmetDiscoveryLog)
	l, err := DecodeDiscoveryLog(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := nvmetDiscoveryWant()
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", l, want)
	}
	if !bytes.Equal(l.Append(nil), raw) {
		t.Error("re-encoding differs from nvmet")
	}
	g, n, f, err := DecodeDiscoveryLogHeader(raw[:18])
	if g != 3 || n != 2 || f != 0 || err != nil {
		t.Errorf("header %d %d %d %v", g, n, f, err)
	}
	if _, _, _, err := DecodeDiscoveryLogHeader(raw[:17]); err != ErrShort {
		t.Error("short header")
	}
}

func TestDiscoveryLogEntryOffsets(t *testing.T) {
	e := DiscoveryLogEntry{
		TRTYPE: 0x11, ADRFAM: 0x12, SUBTYPE: 0x13, TREQ: 0x14, PORTID: 0x1516, CNTLID: 0x1718,
		ASQSZ: 0x191A, EFLAGS: EFlagsDUPRETINFO | EFlagsEPCSD | EFlagsNCC,
		TRSVCID: "8009", SUBNQN: "nqn.sub", TRADDR: "fe80::1",
	}
	e.TSAS[0] = TCPSecTypeTLS13
	e.TSAS[255] = 0x77
	b := bytes.Repeat([]byte{0xEE}, DiscoveryLogEntrySize)
	e.Put(b)
	le := binary.LittleEndian
	if b[0] != 0x11 || b[1] != 0x12 || b[2] != 0x13 || b[3] != 0x14 || le.Uint16(b[4:]) != 0x1516 ||
		le.Uint16(b[6:]) != 0x1718 || le.Uint16(b[8:]) != 0x191A || le.Uint16(b[10:]) != 7 {
		t.Errorf("header %x", b[:12])
	}
	if !bytes.Equal(b[12:32], make([]byte, 20)) || !bytes.Equal(b[64:256], make([]byte, 192)) {
		t.Error("reserved not zeroed")
	}
	if string(b[32:36]) != "8009" || b[36] != 0 || string(b[256:263]) != "nqn.sub" ||
		string(b[512:519]) != "fe80::1" || b[768] != TCPSecTypeTLS13 || b[1023] != 0x77 {
		t.Error("TRSVCID@32 / SUBNQN@256 / TRADDR@512 / TSAS@768")
	}
	var d DiscoveryLogEntry
	if err := d.Decode(b); err != nil || d != e || d.SECTYPE() != TCPSecTypeTLS13 {
		t.Errorf("round trip %+v", d)
	}
	for n := range DiscoveryLogEntrySize {
		if d.Decode(b[:n]) != ErrShort {
			t.Fatal("short")
		}
	}
}

func TestDiscoveryLogPartial(t *testing.T) {
	raw := sparse(t, 3072, nvmetDiscoveryLog)
	for n := range len(raw) + 1 {
		l, err := DecodeDiscoveryLog(raw[:n])
		if n < DiscoveryLogHeaderSize {
			if err != ErrShort {
				t.Fatalf("n=%d: %v", n, err)
			}
			continue
		}
		if err != nil || l.NUMREC != 2 || len(l.Entries) != (n-1024)/1024 {
			t.Fatalf("n=%d: %d entries, %v", n, len(l.Entries), err)
		}
	}
	// NUMREC limits the entries decoded even when more bytes follow.
	binary.LittleEndian.PutUint64(raw[8:], 1)
	l, _ := DecodeDiscoveryLog(raw)
	if len(l.Entries) != 1 {
		t.Errorf("NUMREC 1: %d entries", len(l.Entries))
	}
	// A header-only log with a huge NUMREC allocates nothing.
	binary.LittleEndian.PutUint64(raw[8:], 1<<62)
	l, _ = DecodeDiscoveryLog(raw[:1024])
	if l.Entries != nil || l.NUMREC != 1<<62 {
		t.Errorf("header only: %+v", l)
	}
	// Append writes NUMREC as given.
	l = &DiscoveryLog{GENCTR: 1, NUMREC: 5, RECFMT: 0, Entries: nvmetDiscoveryWant().Entries[:1]}
	b := l.Append(nil)
	if len(b) != 2048 || binary.LittleEndian.Uint64(b[8:]) != 5 {
		t.Error("Append NUMREC")
	}
}
