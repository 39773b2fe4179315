package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

var errShort = errors.New("nvme/tcp: short buffer")

// ErrDataDigest reports a data digest mismatch. It is not a *FatalError:
// the spec lets the receiver fail just the command (Transient Transport
// Error) or tear the connection down, and the caller chooses.
var ErrDataDigest = errors.New("nvme/tcp: data digest error")

// FatalError is a fatal transport error found in a received PDU: the
// receiver must send a TermReq with FES/FEI and close the connection.
type FatalError struct {
	FES    uint16
	FEI    uint32
	Reason string
	// Header is the offending PDU's header as received (at most
	// MaxTermReqData bytes): the error data of the TermReq.
	Header []byte
}

func (e *FatalError) Error() string {
	return fmt.Sprintf("nvme/tcp: fatal: %s (FES %#x %s, FEI %#x)", e.Reason, e.FES, FESString(e.FES), e.FEI)
}

func fatal(fes uint16, fei uint32, hdr []byte, format string, args ...any) *FatalError {
	h := hdr
	if len(h) > MaxTermReqData {
		h = h[:MaxTermReqData]
	}
	return &FatalError{FES: fes, FEI: fei, Reason: fmt.Sprintf(format, args...), Header: append([]byte(nil), h...)}
}

// Byte offsets of common-header fields, for FEI.
const (
	offType  = 0
	offFlags = 1
	offHLEN  = 2
	offPDO   = 3
	offPLEN  = 4
	offDATAL = 16 // H2CData/C2HData
)

// Rules are what a receiver checks every PDU header against: which side it
// is, what the connection negotiated and how much data it accepts.
type Rules struct {
	// Controller is true on the target: it accepts host-to-controller PDUs
	// (ICReq, H2CTermReq, CapsuleCmd, H2CData) and nothing else.
	Controller bool
	Digests
	// PDA is the alignment this side asked its peer for (HPDA on a host,
	// CPDA on a controller), 0's based dwords: PDO must be a multiple of
	// (PDA+1)*4.
	PDA uint8
	// MaxCapsuleData bounds in-capsule data; MaxData bounds the data in
	// one H2CData or C2HData PDU (MAXH2CDATA on a controller). Zero means
	// no bound beyond the 32-bit PLEN.
	MaxCapsuleData uint32
	MaxData        uint32
}

func (r *Rules) accepts(t PDUType) bool {
	switch t {
	case TypeICReq, TypeH2CTermReq, TypeCapsuleCmd, TypeH2CData:
		return r.Controller
	case TypeICResp, TypeC2HTermReq, TypeCapsuleResp, TypeC2HData, TypeR2T:
		return !r.Controller
	}
	return false
}

// headerLen returns how many bytes follow the common header up to the end
// of the header digest, checking type, HLEN and the digest flag first. hdr
// holds at least the 8-byte common header.
func (r *Rules) headerLen(ch *CommonHeader, hdr []byte) (int, *FatalError) {
	if !r.accepts(ch.Type) {
		return 0, fatal(FESInvalidHeaderField, offType, hdr[:CommonHeaderSize], "unexpected PDU type %#x", uint8(ch.Type))
	}
	hlen := HLen(ch.Type)
	if int(ch.HLEN) != hlen {
		return 0, fatal(FESInvalidHeaderField, offHLEN, hdr[:CommonHeaderSize], "%v hlen %d, want %d", ch.Type, ch.HLEN, hlen)
	}
	if !digestible(ch.Type) {
		return hlen - CommonHeaderSize, nil
	}
	if (ch.Flags&FlagHDGST != 0) != r.Header {
		return 0, fatal(FESInvalidHeaderField, offFlags, hdr[:CommonHeaderSize], "%v HDGSTF=%v but header digest negotiated %v", ch.Type, ch.Flags&FlagHDGST != 0, r.Header)
	}
	if r.Header {
		return hlen + DigestSize - CommonHeaderSize, nil
	}
	return hlen - CommonHeaderSize, nil
}

func digestible(t PDUType) bool {
	return t != TypeICReq && t != TypeICResp && t != TypeH2CTermReq && t != TypeC2HTermReq
}

// Layout is where a received PDU's data lies.
type Layout struct {
	HeaderLen int // HLEN plus header digest
	Pad       int // bytes between the header and PDO
	DataLen   int
	DDigest   bool // a data digest follows the data
}

// check validates the full header (common header, type-specific fields
// and header digest) and returns the data layout.
func (r *Rules) check(ch *CommonHeader, hdr []byte, p PDU) (Layout, *FatalError) {
	l := Layout{HeaderLen: len(hdr)}
	hlen := int(ch.HLEN)
	if digestible(ch.Type) && r.Header {
		want := Checksum(hdr[:hlen])
		if got := binary.LittleEndian.Uint32(hdr[hlen:]); got != want {
			// For FES 03h the FEI "indicates the HDGST that was
			// received" (NVMe/TCP 1.0 3.6.2.4, 3.6.2.5).
			return l, fatal(FESHeaderDigestError, got, hdr, "%v header digest %#08x, want %#08x", ch.Type, got, want)
		}
	}
	plen := int64(ch.PLEN)
	switch ch.Type {
	case TypeICReq, TypeICResp, TypeCapsuleResp, TypeR2T:
		if plen != int64(l.HeaderLen) {
			return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "%v plen %d, want %d", ch.Type, plen, l.HeaderLen)
		}
		if ch.PDO != 0 {
			return l, fatal(FESInvalidHeaderField, offPDO, hdr, "%v pdo %d on a PDU without data", ch.Type, ch.PDO)
		}
		return l, nil
	case TypeH2CTermReq, TypeC2HTermReq:
		if plen < HLenTermReq || plen > HLenTermReq+MaxTermReqData {
			return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "%v plen %d outside 24..152", ch.Type, plen)
		}
		l.DataLen = int(plen) - HLenTermReq
		return l, nil
	}
	// CapsuleCmd, H2CData, C2HData.
	if plen < int64(l.HeaderLen) {
		return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "%v plen %d shorter than its header", ch.Type, plen)
	}
	hasData := plen > int64(l.HeaderLen)
	if !hasData {
		if ch.Type != TypeCapsuleCmd {
			return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "%v without data", ch.Type)
		}
		if ch.Flags&FlagDDGST != 0 {
			return l, fatal(FESInvalidHeaderField, offFlags, hdr, "DDGSTF set on a PDU without data")
		}
		if ch.PDO != 0 {
			return l, fatal(FESInvalidHeaderField, offPDO, hdr, "%v pdo %d on a PDU without data", ch.Type, ch.PDO)
		}
		return l, nil
	}
	if (ch.Flags&FlagDDGST != 0) != r.Data {
		return l, fatal(FESInvalidHeaderField, offFlags, hdr, "%v DDGSTF=%v but data digest negotiated %v", ch.Type, ch.Flags&FlagDDGST != 0, r.Data)
	}
	align := (int(r.PDA) + 1) * 4
	if int(ch.PDO) < l.HeaderLen || int(ch.PDO)%align != 0 {
		return l, fatal(FESInvalidHeaderField, offPDO, hdr, "%v pdo %d: must be >= %d and a multiple of %d", ch.Type, ch.PDO, l.HeaderLen, align)
	}
	l.Pad = int(ch.PDO) - l.HeaderLen
	l.DDigest = r.Data
	dlen := plen - int64(ch.PDO)
	if r.Data {
		dlen -= DigestSize
	}
	if dlen <= 0 {
		return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "%v plen %d leaves no data after pdo %d", ch.Type, plen, ch.PDO)
	}
	if dlen > math.MaxInt-1<<16 { // only on 32-bit platforms: Layout and slices use int
		return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "%v plen %d too large for this platform", ch.Type, plen)
	}
	l.DataLen = int(dlen)
	switch v := p.(type) {
	case *CapsuleCmd:
		if r.MaxCapsuleData > 0 && dlen > int64(r.MaxCapsuleData) {
			return l, fatal(FESInvalidHeaderField, offPLEN, hdr, "in-capsule data %d bytes exceeds %d", dlen, r.MaxCapsuleData)
		}
	case *H2CData:
		if int64(v.DATAL) != dlen {
			return l, fatal(FESInvalidHeaderField, offDATAL, hdr, "H2CData datal %d but PDU carries %d bytes", v.DATAL, dlen)
		}
		if r.MaxData > 0 && dlen > int64(r.MaxData) {
			return l, fatal(FESDataLimitExceeded, 0, hdr, "H2CData datal %d exceeds MAXH2CDATA %d", dlen, r.MaxData)
		}
	case *C2HData:
		if int64(v.DATAL) != dlen {
			return l, fatal(FESInvalidHeaderField, offDATAL, hdr, "C2HData datal %d but PDU carries %d bytes", v.DATAL, dlen)
		}
		if v.Success && !v.Last {
			return l, fatal(FESInvalidHeaderField, offFlags, hdr, "C2HData SUCCESS without LAST_PDU")
		}
		if r.MaxData > 0 && dlen > int64(r.MaxData) {
			return l, fatal(FESDataLimitExceeded, 0, hdr, "C2HData datal %d exceeds limit %d", dlen, r.MaxData)
		}
	}
	return l, nil
}

// Parse decodes one PDU from the start of b under rules r. It returns the
// PDU, its common header, its data (a sub-slice of b, after the padding and
// before any data digest) and the number of bytes it occupies. A truncated
// PDU returns errShort-wrapped io.ErrUnexpectedEOF semantics as ErrTruncated;
// a protocol violation returns *FatalError; a bad data digest returns the
// PDU with ErrDataDigest.
func Parse(b []byte, r *Rules) (PDU, CommonHeader, []byte, int, error) {
	return parse(b, r, nil)
}

// Parser is Parse without the allocation: it decodes into values it owns,
// one per PDU type, so the PDU it returns is valid until its next Parse.
// The zero value is ready to use.
type Parser struct{ pdus pduSet }

// Parse is like the package-level Parse.
func (ps *Parser) Parse(b []byte, r *Rules) (PDU, CommonHeader, []byte, int, error) {
	return parse(b, r, &ps.pdus)
}

func parse(b []byte, r *Rules, set *pduSet) (PDU, CommonHeader, []byte, int, error) {
	var ch CommonHeader
	if err := ch.Decode(b); err != nil {
		return nil, ch, nil, 0, ErrTruncated
	}
	rest, ferr := r.headerLen(&ch, b)
	if ferr != nil {
		return nil, ch, nil, 0, ferr
	}
	hend := CommonHeaderSize + rest
	if len(b) < hend {
		return nil, ch, nil, 0, ErrTruncated
	}
	var p PDU
	if set != nil {
		p = set.get(ch.Type)
	} else {
		p = newPDU(ch.Type)
	}
	p.decode(b[CommonHeaderSize:ch.HLEN], ch.Flags)
	l, ferr := r.check(&ch, b[:hend], p)
	if ferr != nil {
		return nil, ch, nil, 0, ferr
	}
	end := hend + l.Pad + l.DataLen
	if l.DDigest {
		end += DigestSize
	}
	if len(b) < end {
		return nil, ch, nil, 0, ErrTruncated
	}
	data := b[hend+l.Pad : hend+l.Pad+l.DataLen]
	if l.DDigest && binary.LittleEndian.Uint32(b[end-DigestSize:]) != Checksum(data) {
		return p, ch, data, end, ErrDataDigest
	}
	return p, ch, data, end, nil
}

// ErrTruncated reports that a buffer ends inside a PDU.
var ErrTruncated = errors.New("nvme/tcp: truncated PDU")
