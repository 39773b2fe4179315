package nvme

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
)

// Golden data in these tests was captured on loopback between Linux 6.12's
// NVMe/TCP host and its nvmet target (nvmet's answers, the host's
// commands). Large structures are written sparsely: offset -> hex bytes,
// everything else zero.

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func sparse(t testing.TB, size int, chunks map[int]string) []byte {
	t.Helper()
	b := make([]byte, size)
	for off, h := range chunks {
		copy(b[off:], mustHex(t, h))
	}
	return b
}

// nvmetIdentifyController is nvmet's Identify Controller for an NVM
// subsystem (Linux 6.12).
var nvmetIdentifyController = map[int]string{
	4:    "7065657273657269616c303030312020202020204c696e75782020202020202020202020202020202020202020202020202020202020202020202020362e31322e313137060000000b0001000003010000000000000000000009000041000000000000000000000000000001",
	258:  "030303077f",
	320:  "0a",
	342:  "0a1f8000000080",
	512:  "66440004000400000c000000000100000000000100000000010010000004",
	768:  "6e716e2e323032362d31312e696f2e706565723a6b65726e656c",
	1792: "040400000100000000000001",
	2048: "c40900001000000004",
}

// nvmetIdentifyDiscovery is nvmet's Identify Controller for its discovery
// subsystem.
var nvmetIdentifyDiscovery = map[int]string{
	4:   "37316632376435316638346438396433633934634c696e75782020202020202020202020202020202020202020202020202020202020202020202020362e31322e31313700000000000001000003010000000000000000000000008000000000000000000000000000000002",
	261: "04",
	515: "04",
	536: "010010",
	768: "6e716e2e323031342d30382e6f72672e6e766d657870726573732e646973636f76657279",
}

func TestIdentifyControllerGolden(t *testing.T) {
	raw := sparse(t, IdentifyDataSize, nvmetIdentifyController)
	var c IdentifyController
	if err := c.Decode(raw); err != nil {
		t.Fatal(err)
	}
	want := IdentifyController{
		SN: "peerserial0001", MN: "Linux", FR: "6.12.117",
		RAB: 6, CMIC: CMICMultiPort | CMICMultiCtrl | CMICANA, MDTS: 0, CNTLID: 1,
		VER: MakeVersion(1, 3, 0), OAES: 0x900, CTRATT: 0x41, CNTRLTYPE: CntrlTypeIO,
		ACL: 3, AERL: 3, FRMW: 3, LPA: 7, ELPE: 0x7F, KAS: 10,
		ANATT: 10, ANACAP: 0x1F, ANAGRPMAX: 128, NANAGRPID: 128,
		SQES: 0x66, CQES: 0x44, MAXCMD: 1024, NN: 1024, ONCS: ONCSDSM | ONCSWriteZeroes,
		VWC: VWCPresent, NWPC: 1, SGLS: SGLSByteAligned | SGLSOffset, MNAN: 1024,
		SUBNQN: "nqn.2026-11.io.peer:kernel",
		IOCCSZ: 1028, IORCSZ: 1, ICDOFF: 0, FCATT: 0, MSDBD: 1,
	}
	copy(want.PSD0[:], mustHex(t, "c40900001000000004"))
	if c != want {
		t.Errorf("decoded\n%+v\nwant\n%+v", c, want)
	}
	// Decode -> Put reproduces nvmet's bytes exactly.
	out := c.Append(nil)
	if !bytes.Equal(out, raw) {
		t.Errorf("re-encoding differs from nvmet's bytes")
	}
}

func TestIdentifyControllerKeyOffsets(t *testing.T) {
	c := IdentifyController{
		MDTS: 0x05, CNTLID: 0xABCD, KAS: 0x1234, NN: 0xDEADBEEF, SGLS: 0x00100001,
		ANATT: 0x0A, ANACAP: 0x47, ANAGRPMAX: 0x11223344, NANAGRPID: 0x55667788, CQT: 0x99AA,
		SUBNQN: "nqn.x", IOCCSZ: 0x01020304, IORCSZ: 0x05060708, ICDOFF: 0x090A,
		FCATT: 0x01, MSDBD: 0x0B, OFCS: 0x0001, CNTRLTYPE: 2, VER: 0x00020000,
	}
	b := make([]byte, IdentifyDataSize)
	for i := range b {
		b[i] = 0xEE // Put must zero reserved bytes
	}
	c.Put(b)
	le := binary.LittleEndian
	check := func(name string, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %#x, want %#x", name, got, want)
		}
	}
	check("MDTS@77", uint64(b[77]), 0x05)
	check("CNTLID@78", uint64(le.Uint16(b[78:])), 0xABCD)
	check("VER@80", uint64(le.Uint32(b[80:])), 0x00020000)
	check("CNTRLTYPE@111", uint64(b[111]), 2)
	check("KAS@320", uint64(le.Uint16(b[320:])), 0x1234)
	check("ANATT@342", uint64(b[342]), 0x0A)
	check("ANACAP@343", uint64(b[343]), 0x47)
	check("ANAGRPMAX@344", uint64(le.Uint32(b[344:])), 0x11223344)
	check("NANAGRPID@348", uint64(le.Uint32(b[348:])), 0x55667788)
	check("CQT@386", uint64(le.Uint16(b[386:])), 0x99AA) // NVMe Base 2.1 figure 312: bytes 387:386
	check("NN@516", uint64(le.Uint32(b[516:])), 0xDEADBEEF)
	check("SGLS@536", uint64(le.Uint32(b[536:])), 0x00100001)
	check("IOCCSZ@1792", uint64(le.Uint32(b[1792:])), 0x01020304)
	check("IORCSZ@1796", uint64(le.Uint32(b[1796:])), 0x05060708)
	check("ICDOFF@1800", uint64(le.Uint16(b[1800:])), 0x090A)
	check("FCATT@1802", uint64(b[1802]), 1)
	check("MSDBD@1803", uint64(b[1803]), 0x0B)
	check("OFCS@1804", uint64(le.Uint16(b[1804:])), 1)
	if !bytes.Equal(b[768:773], []byte("nqn.x")) || b[773] != 0 || b[1023] != 0 {
		t.Errorf("SUBNQN@768 = %q", b[768:780])
	}
	if got := string(b[4:24]); got != "                    " {
		t.Errorf("empty SN must be space padded, got %q", got)
	}
	if b[100] != 0 || b[1807] != 0 || b[4095] != 0 {
		t.Error("reserved bytes not zeroed")
	}
}

func TestIdentifyDiscoveryController(t *testing.T) {
	raw := sparse(t, IdentifyDataSize, nvmetIdentifyDiscovery)
	var c IdentifyController
	if err := c.Decode(raw); err != nil {
		t.Fatal(err)
	}
	if c.CNTRLTYPE != CntrlTypeDiscovery || c.SUBNQN != DiscoveryNQN || c.SN != "71f27d51f84d89d3c94c" ||
		c.OAES != AECDiscovery || c.MAXCMD != 1024 || c.LPA != 4 || c.CNTLID != 1 {
		t.Errorf("decoded %+v", c)
	}
	if !bytes.Equal(c.Append(nil), raw) {
		t.Error("re-encoding differs")
	}
}

func fullIdentifyController() IdentifyController {
	c := IdentifyController{
		VID: 1, SSVID: 2, SN: "SN0123456789abcdefgh", MN: "model", FR: "fw-1.0",
		RAB: 3, IEEE: [3]byte{4, 5, 6}, CMIC: 7, MDTS: 8, CNTLID: 9, VER: 10,
		RTD3R: 11, RTD3E: 12, OAES: 13, CTRATT: 14, CNTRLTYPE: 1, CRDT1: 15, CRDT2: 16, CRDT3: 17,
		OACS: 18, ACL: 19, AERL: 20, FRMW: 21, LPA: 22, ELPE: 23, NPSS: 24, AVSCC: 25, APSTA: 26,
		WCTEMP: 27, CCTEMP: 28, MTFA: 29, HMPRE: 30, HMMIN: 31, RPMBS: 32, EDSTT: 33, DSTO: 34,
		FWUG: 35, KAS: 36, HCTMA: 37, MNTMT: 38, MXTMT: 39, SANICAP: 40, HMMINDS: 41, HMMAXD: 42,
		NVMSETIDMAX: 43, ENDGIDMAX: 44, ANATT: 45, ANACAP: 46, ANAGRPMAX: 47, NANAGRPID: 48, CQT: 71,
		SQES: 49, CQES: 50, MAXCMD: 51, NN: 52, ONCS: 53, FUSES: 54, FNA: 55, VWC: 56, AWUN: 57,
		AWUPF: 58, NVSCC: 59, NWPC: 60, ACWU: 61, SGLS: 62, MNAN: 63,
		SUBNQN: "nqn.2014-08.org.example:sub", IOCCSZ: 64, IORCSZ: 65, ICDOFF: 66, FCATT: 67,
		MSDBD: 68, OFCS: 69, DCTYPE: 70,
	}
	for i := range c.FGUID {
		c.FGUID[i] = byte(0x80 + i)
		c.TNVMCAP[i] = byte(0x90 + i)
		c.UNVMCAP[i] = byte(0xA0 + i)
	}
	for i := range c.PSD0 {
		c.PSD0[i] = byte(0xC0 + i)
	}
	return c
}

func TestIdentifyControllerRoundTrip(t *testing.T) {
	c := fullIdentifyController()
	b := c.Append(make([]byte, 3, 8))
	if len(b) != 3+IdentifyDataSize {
		t.Fatalf("Append length %d", len(b))
	}
	var d IdentifyController
	if err := d.Decode(b[3:]); err != nil {
		t.Fatal(err)
	}
	if d != c {
		t.Errorf("round trip\n%+v\n%+v", d, c)
	}
	// Over-long strings are truncated to the field.
	c.MN = string(bytes.Repeat([]byte("m"), 50))
	c.Put(b[3:])
	_ = d.Decode(b[3:])
	if len(d.MN) != 40 || b[3+64] != 'f' {
		t.Errorf("MN truncation: %q", d.MN)
	}
}

func TestIdentifyNamespaceGolden(t *testing.T) {
	raw := sparse(t, IdentifyDataSize, map[int]string{
		2:   "2000000000000000200000000000000020000000000012000000000001",
		92:  "01",
		130: "09",
	})
	var ns IdentifyNamespace
	if err := ns.Decode(raw); err != nil {
		t.Fatal(err)
	}
	want := IdentifyNamespace{NSZE: 0x200000, NCAP: 0x200000, NUSE: 0x200000, NSFEAT: 0x12, NMIC: 1, ANAGRPID: 1}
	want.LBAF[0] = LBAFormat{LBADS: 9}
	if ns != want {
		t.Errorf("decoded %+v", ns)
	}
	if ns.BlockSize() != 512 {
		t.Errorf("BlockSize = %d", ns.BlockSize())
	}
	if !bytes.Equal(ns.Append(nil), raw) {
		t.Error("re-encoding differs")
	}
}

func TestIdentifyNamespaceRoundTrip(t *testing.T) {
	ns := IdentifyNamespace{
		NSZE: 1 << 40, NCAP: 2, NUSE: 3, NSFEAT: 4, NLBAF: 63, FLBAS: 0x61, MC: 5, DPC: 6, DPS: 7,
		NMIC: 8, RESCAP: 9, FPI: 10, DLFEAT: 11, NAWUN: 12, NAWUPF: 13, NACWU: 14, NABSN: 15,
		NABO: 16, NABSPF: 17, NOIOB: 18, NPWG: 19, NPWA: 20, NPDG: 21, NPDA: 22, NOWS: 23,
		ANAGRPID: 24, NSATTR: 25, NVMSETID: 26, ENDGID: 27,
	}
	for i := range ns.LBAF {
		ns.LBAF[i] = LBAFormat{MS: uint16(i * 8), LBADS: uint8(9 + i%4), RP: uint8(i % 4)}
	}
	ns.NVMCAP[15] = 1
	ns.NGUID[0], ns.EUI64[7] = 0xAA, 0xBB
	b := ns.Append(nil)
	le := binary.LittleEndian
	if le.Uint32(b[92:]) != 24 || b[104] != 0xAA || b[127] != 0xBB || b[99] != 25 {
		t.Error("ANAGRPID/NGUID/EUI64/NSATTR offsets")
	}
	if le.Uint16(b[128+4*33:]) != 33*8 || b[128+4*33+2] != 9+33%4 {
		t.Error("LBAF offsets")
	}
	var d IdentifyNamespace
	if err := d.Decode(b); err != nil || d != ns {
		t.Errorf("round trip: %v\n%+v", err, d)
	}
	// FLBAS 0x61: index = 1 | (0x60>>1) = 0x31 = 49.
	if d.LBAFIndex() != 49 || d.BlockSize() != 1<<(9+49%4) {
		t.Errorf("LBAFIndex %d BlockSize %d", d.LBAFIndex(), d.BlockSize())
	}
	d.LBAF[49].LBADS = 40
	if d.BlockSize() != 0 {
		t.Error("LBADS >= 32 must give 0")
	}
}

func TestNSDescriptorsGolden(t *testing.T) {
	raw := sparse(t, IdentifyDataSize, map[int]string{0: "031000005cdb291256ce4c3cbf5cf4cf6d23cfa50401"})
	ds, err := DecodeNSDescriptors(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].NIDT != NIDTUUID || len(ds[0].NID) != 16 || ds[0].NID[0] != 0x5c ||
		ds[1].NIDT != NIDTCSI || !bytes.Equal(ds[1].NID, []byte{CSINVM}) {
		t.Fatalf("decoded %+v", ds)
	}
	out := AppendNSDescriptors(nil, ds)
	out = append(out, make([]byte, IdentifyDataSize-len(out))...)
	if !bytes.Equal(out, raw) {
		t.Error("re-encoding differs")
	}
}

func TestNSDescriptorsErrors(t *testing.T) {
	all := []NSDescriptor{
		{NIDT: NIDTEUI64, NID: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{NIDT: NIDTNGUID, NID: bytes.Repeat([]byte{2}, 16)},
		{NIDT: NIDTUUID, NID: bytes.Repeat([]byte{3}, 16)},
		{NIDT: NIDTCSI, NID: []byte{CSIZNS}},
		{NIDT: 0x7E, NID: []byte{9, 9, 9}}, // unknown types keep any length
	}
	b := AppendNSDescriptors(nil, all)
	if len(b) != 4*5+8+16+16+1+3 {
		t.Fatalf("len %d", len(b))
	}
	ds, err := DecodeNSDescriptors(b)
	if err != nil || len(ds) != len(all) {
		t.Fatalf("%v %+v", err, ds)
	}
	for i := range ds {
		if ds[i].NIDT != all[i].NIDT || !bytes.Equal(ds[i].NID, all[i].NID) {
			t.Errorf("descriptor %d: %+v", i, ds[i])
		}
	}
	// Wrong NIDL for its type.
	bad := []byte{NIDTEUI64, 16, 0, 0}
	bad = append(bad, make([]byte, 16)...)
	if _, err := DecodeNSDescriptors(bad); !errors.Is(err, ErrNIDL) {
		t.Errorf("want ErrNIDL, got %v", err)
	}
	// Every truncation either ends cleanly on a descriptor boundary or
	// reports ErrShort.
	for n := range len(b) {
		ds, err := DecodeNSDescriptors(b[:n])
		if err == nil {
			total := 0
			for _, d := range ds {
				total += 4 + len(d.NID)
			}
			if total != n {
				t.Errorf("n=%d: no error but consumed %d", n, total)
			}
		} else if !errors.Is(err, ErrShort) {
			t.Errorf("n=%d: %v", n, err)
		}
	}
}

func TestNSList(t *testing.T) {
	raw := sparse(t, IdentifyDataSize, map[int]string{0: "0100000002"})
	if got := DecodeNSList(raw); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("DecodeNSList = %v", got)
	}
	if !bytes.Equal(AppendNSList(nil, []uint32{1, 2}), raw) {
		t.Error("AppendNSList differs from nvmet")
	}
	ids := make([]uint32, 1100)
	for i := range ids {
		ids[i] = uint32(i + 1)
	}
	b := AppendNSList([]byte{0xFF}, ids)
	if len(b) != 1+IdentifyDataSize {
		t.Fatalf("len %d", len(b))
	}
	got := DecodeNSList(b[1:])
	if len(got) != MaxNSList || got[1023] != 1024 {
		t.Errorf("full list: %d entries", len(got))
	}
	if DecodeNSList(nil) != nil || DecodeNSList(make([]byte, 4096)) != nil {
		t.Error("empty list must decode as nil")
	}
	for n := range 12 {
		if got := DecodeNSList(raw[:n]); len(got) != min(n/4, 2) {
			t.Errorf("n=%d: %v", n, got)
		}
	}
}

func TestIdentifyTruncated(t *testing.T) {
	full := make([]byte, IdentifyDataSize)
	for n := range IdentifyDataSize {
		var c IdentifyController
		if err := c.Decode(full[:n]); err != ErrShort {
			t.Fatalf("IdentifyController n=%d: %v", n, err)
		}
		var ns IdentifyNamespace
		if err := ns.Decode(full[:n]); err != ErrShort {
			t.Fatalf("IdentifyNamespace n=%d: %v", n, err)
		}
	}
}

func TestStringPadding(t *testing.T) {
	b := make([]byte, 8)
	putASCII(b, "ab")
	if string(b) != "ab      " {
		t.Errorf("putASCII %q", b)
	}
	if getASCII([]byte("ab  \x00\x00")) != "ab" || getASCII([]byte("        ")) != "" {
		t.Error("getASCII trim")
	}
	putNUL(b, "xyz")
	if string(b) != "xyz\x00\x00\x00\x00\x00" {
		t.Errorf("putNUL %q", b)
	}
	if getNUL([]byte("ab\x00cd")) != "ab" || getNUL([]byte("abcd")) != "abcd" {
		t.Error("getNUL")
	}
}

func TestIdentifyAllocs(t *testing.T) {
	c := fullIdentifyController()
	b := make([]byte, IdentifyDataSize)
	if n := testing.AllocsPerRun(100, func() { c.Put(b) }); n != 0 {
		t.Errorf("IdentifyController.Put allocs = %v", n)
	}
	var ns IdentifyNamespace
	if n := testing.AllocsPerRun(100, func() { ns.Put(b); _ = ns.Decode(b) }); n != 0 {
		t.Errorf("IdentifyNamespace Put+Decode allocs = %v", n)
	}
}
