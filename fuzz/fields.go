package fuzz

import (
	"encoding/binary"
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// fieldKind says which boundary values a field gets beyond the generic
// ones (0, 1, max, max-1, one off the current value, a flipped bit).
type fieldKind uint8

const (
	kindPlain   fieldKind = iota
	kindType              // PDU type: every defined type and a few undefined
	kindFlags             // bits flipped
	kindHLEN              // every header length, and one off
	kindPDO               // inside the header, at its end, one off, past the digest
	kindPLEN              // the real length and one off, the header length, huge
	kindDataLen           // the data's real length and one off, huge
	kindOffset            // 0, the data length, past it
	kindQueueID           // 0, 1, FFFFh
	kindDigest            // a wrong digest (the fix is cleared)
	kindNQN               // NQN strings: empty, unterminated, the discovery NQN
	kindOpcode            // opcodes of every command set and fabrics
)

// field is one header or data field a mutator can set. Off is from the
// start of the PDU, or from PDO for fields of the data (Data true).
type field struct {
	Name string
	Off  int
	Size int
	Kind fieldKind
	Data bool
	Fix  Fix // the fix that would overwrite the field: cleared when set
}

var commonFields = []field{
	{Name: "Type", Off: 0, Size: 1, Kind: kindType},
	{Name: "Flags", Off: 1, Size: 1, Kind: kindFlags},
	{Name: "HLEN", Off: 2, Size: 1, Kind: kindHLEN},
	{Name: "PDO", Off: 3, Size: 1, Kind: kindPDO},
	{Name: "PLEN", Off: 4, Size: 4, Kind: kindPLEN},
}

var icreqFields = []field{
	{Name: "PFV", Off: 8, Size: 2},
	{Name: "HPDA", Off: 10, Size: 1},
	{Name: "DGST", Off: 11, Size: 1, Kind: kindFlags},
	{Name: "MAXR2T", Off: 12, Size: 4},
}

var termReqFields = []field{
	{Name: "FES", Off: 8, Size: 2},
	{Name: "FEI", Off: 10, Size: 4},
}

var sqeFields = []field{
	{Name: "OPC", Off: 8, Size: 1, Kind: kindOpcode},
	{Name: "FUSE_PSDT", Off: 9, Size: 1, Kind: kindFlags},
	{Name: "CID", Off: 10, Size: 2},
	{Name: "NSID", Off: 12, Size: 4},
	{Name: "CDW2", Off: 16, Size: 4},
	{Name: "MPTR", Off: 24, Size: 8},
	{Name: "SGL.Addr", Off: 32, Size: 8, Kind: kindOffset},
	{Name: "SGL.Length", Off: 40, Size: 4, Kind: kindDataLen},
	{Name: "SGL.TypeSubtype", Off: 47, Size: 1, Kind: kindFlags},
	{Name: "CDW10", Off: 48, Size: 4},
	{Name: "CDW11", Off: 52, Size: 4},
	{Name: "CDW12", Off: 56, Size: 4},
	{Name: "CDW13", Off: 60, Size: 4},
}

// Fabrics commands have FCTYPE where NSID is; Connect its fields in
// CDW10..12 (NVMe Base 2.2 6.3).
var fabricsFields = []field{
	{Name: "FCTYPE", Off: 12, Size: 1},
}

var connectFields = []field{
	{Name: "Connect.RECFMT", Off: 48, Size: 2},
	{Name: "Connect.QID", Off: 50, Size: 2, Kind: kindQueueID},
	{Name: "Connect.SQSIZE", Off: 52, Size: 2},
	{Name: "Connect.CATTR", Off: 54, Size: 1, Kind: kindFlags},
	{Name: "Connect.KATO", Off: 56, Size: 4},
}

var connectDataFields = []field{
	{Name: "ConnectData.HOSTID", Off: nvme.ConnectDataOffHOSTID, Size: 8, Data: true},
	{Name: "ConnectData.CNTLID", Off: nvme.ConnectDataOffCNTLID, Size: 2, Data: true, Fix: FixCNTLID},
	{Name: "ConnectData.SUBNQN", Off: nvme.ConnectDataOffSUBNQN, Size: 256, Data: true, Kind: kindNQN},
	{Name: "ConnectData.HOSTNQN", Off: nvme.ConnectDataOffHOSTNQN, Size: 256, Data: true, Kind: kindNQN},
}

var h2cDataFields = []field{
	{Name: "CCCID", Off: 8, Size: 2},
	{Name: "TTAG", Off: 10, Size: 2, Fix: FixTTAG},
	{Name: "DATAO", Off: 12, Size: 4, Kind: kindOffset},
	{Name: "DATAL", Off: 16, Size: 4, Kind: kindDataLen},
}

// fieldsOf returns the fields of the PDU in b: the common header, the
// type's own, the SQE's and Connect's for a capsule, and the digests the
// flags announce.
func fieldsOf(b []byte) []field {
	if len(b) < tcp.CommonHeaderSize {
		return commonFields[:min(len(b), 4)] // what there is of them
	}
	fs := append([]field(nil), commonFields...)
	t := tcp.PDUType(b[0])
	hlen := tcp.HLen(t)
	switch t {
	case tcp.TypeICReq:
		fs = append(fs, icreqFields...)
	case tcp.TypeH2CTermReq:
		fs = append(fs, termReqFields...)
	case tcp.TypeCapsuleCmd:
		fs = append(fs, sqeFields...)
		if len(b) > 8 && b[8] == nvme.AdminFabrics {
			fs = append(fs, fabricsFields...)
			if len(b) > 12 && b[12] == nvme.FabricsConnect {
				fs = append(fs, connectFields...)
				pdo := int(b[3])
				if pdo >= hlen && len(b) >= pdo+nvme.ConnectDataSize {
					fs = append(fs, connectDataFields...)
				}
			}
		}
	case tcp.TypeH2CData:
		fs = append(fs, h2cDataFields...)
	}
	if hlen > 0 && t != tcp.TypeICReq && t != tcp.TypeH2CTermReq {
		if b[1]&tcp.FlagHDGST != 0 && len(b) >= hlen+tcp.DigestSize {
			fs = append(fs, field{Name: "HDGST", Off: hlen, Size: 4, Kind: kindDigest, Fix: FixDigest})
		}
		if b[1]&tcp.FlagDDGST != 0 && len(b) >= hlen+tcp.DigestSize+1 {
			fs = append(fs, field{Name: "DDGST", Off: len(b) - 4, Size: 4, Kind: kindDigest, Fix: FixDigest})
		}
	}
	// Fields that the bytes do not reach are left out.
	out := fs[:0]
	for _, f := range fs {
		off := f.Off
		if f.Data {
			off += int(b[3])
		}
		if off+f.Size <= len(b) {
			out = append(out, f)
		}
	}
	return out
}

// allFieldNames lists every field name of every PDU type, for coverage.
func allFieldNames() []string {
	var out []string
	add := func(t string, fs []field) {
		for _, f := range fs {
			out = append(out, t+"."+f.Name)
		}
	}
	for _, t := range []tcp.PDUType{tcp.TypeICReq, tcp.TypeH2CTermReq, tcp.TypeCapsuleCmd, tcp.TypeH2CData} {
		add(t.String(), commonFields)
	}
	add("ICReq", icreqFields)
	add("H2CTermReq", termReqFields)
	add("CapsuleCmd", sqeFields)
	add("CapsuleCmd", fabricsFields)
	add("CapsuleCmd", connectFields)
	add("CapsuleCmd", connectDataFields)
	add("CapsuleCmd", []field{{Name: "HDGST"}, {Name: "DDGST"}})
	add("H2CData", h2cDataFields)
	add("H2CData", []field{{Name: "HDGST"}, {Name: "DDGST"}})
	return out
}

// typeName names the PDU type of b for signatures and coverage.
func typeName(b []byte) string {
	if len(b) == 0 {
		return "empty"
	}
	return tcp.PDUType(b[0]).String()
}

func getField(b []byte, off, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[off])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b[off:]))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b[off:]))
	case 8:
		return binary.LittleEndian.Uint64(b[off:])
	}
	panic(fmt.Sprintf("fuzz: field size %d", size))
}

func putField(b []byte, off, size int, v uint64) {
	switch size {
	case 1:
		b[off] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b[off:], uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b[off:], uint32(v))
	case 8:
		binary.LittleEndian.PutUint64(b[off:], v)
	default:
		panic(fmt.Sprintf("fuzz: field size %d", size))
	}
}

// dataLen is the length of the data the PDU in b carries, as its PDO and
// actual size say (digest excluded).
func dataLen(b []byte) int {
	if len(b) < tcp.CommonHeaderSize {
		return 0
	}
	pdo := int(b[3])
	if pdo == 0 || pdo > len(b) {
		return 0
	}
	n := len(b) - pdo
	if b[1]&tcp.FlagDDGST != 0 {
		n -= tcp.DigestSize
	}
	return max(n, 0)
}

// candidates returns the values worth trying in field f of PDU b: the
// boundaries of its size, one off the current value, and the values its
// kind makes interesting (lengths one off the real ones, PDO inside the
// header, every PDU type).
func candidates(b []byte, f field, cur uint64) []uint64 {
	maxv := uint64(1)<<(8*f.Size) - 1
	if f.Size == 8 {
		maxv = ^uint64(0)
	}
	vs := []uint64{0, 1, maxv, maxv - 1, maxv / 2, maxv/2 + 1, cur + 1, cur - 1}
	hlen := uint64(0)
	if len(b) > 2 {
		hlen = uint64(b[2])
	}
	real := uint64(len(b))
	switch f.Kind {
	case kindType:
		vs = append(vs, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x80)
	case kindHLEN:
		vs = append(vs, 8, 24, 72, 128, 23, 25, 71, 73, 127, 129)
	case kindPDO:
		vs = append(vs, hlen, hlen-1, hlen+1, hlen+4, hlen+8, 8, 4, hlen/2, real, 128)
	case kindPLEN:
		vs = append(vs, real, real-1, real+1, hlen, hlen-1, hlen+4, 8, 7, real*2, real+4096)
	case kindDataLen:
		d := uint64(dataLen(b))
		vs = append(vs, d, d-1, d+1, 4096, 4097, 1<<20, 1<<24, 512)
	case kindOffset:
		d := uint64(dataLen(b))
		vs = append(vs, d, d+1, 4096, 1<<31)
	case kindQueueID:
		vs = append(vs, 2, 0xFFFE, 0x8000)
	case kindOpcode:
		vs = append(vs, 0x7F, 0x00, 0x01, 0x02, 0x06, 0x09, 0x0A, 0x18, 0x81, 0xC0, 0x7E)
	}
	for i := range vs {
		vs[i] &= maxv
	}
	return vs
}
