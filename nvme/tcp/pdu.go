// Package tcp implements the NVMe/TCP transport (NVMe/TCP Transport
// Specification 1.0): the PDU formats with their header and data digests,
// ICReq/ICResp negotiation, and Conn, one framed connection with a reader
// and a coalescing writer that both the reference target and the initiator
// use.
//
// Encoding and decoding are pure: AppendPDU writes a PDU into a byte slice
// and Parse*/Decode read one from a byte slice. Conn adds the I/O.
//
// Protocol violations found while decoding are reported as *FatalError,
// which carries the Fatal Error Status (FES) and Fatal Error Information
// (FEI) that the spec requires in a TermReq. An NVMe status in a response
// capsule is a command error, not a connection error, and never a
// *FatalError.
package tcp

import (
	"encoding/binary"
	"fmt"
)

// PDUType is the first byte of every PDU.
type PDUType uint8

// PDU types (NVMe/TCP 1.0, figure 10).
const (
	TypeICReq       PDUType = 0x00
	TypeICResp      PDUType = 0x01
	TypeH2CTermReq  PDUType = 0x02
	TypeC2HTermReq  PDUType = 0x03
	TypeCapsuleCmd  PDUType = 0x04
	TypeCapsuleResp PDUType = 0x05
	TypeH2CData     PDUType = 0x06
	TypeC2HData     PDUType = 0x07
	TypeR2T         PDUType = 0x09
)

var typeNames = [...]string{
	TypeICReq: "ICReq", TypeICResp: "ICResp", TypeH2CTermReq: "H2CTermReq",
	TypeC2HTermReq: "C2HTermReq", TypeCapsuleCmd: "CapsuleCmd",
	TypeCapsuleResp: "CapsuleResp", TypeH2CData: "H2CData",
	TypeC2HData: "C2HData", 8: "", TypeR2T: "R2T",
}

func (t PDUType) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("PDUType(%#02x)", uint8(t))
}

// Header lengths (HLEN) for each PDU type.
const (
	HLenIC          = 128
	HLenTermReq     = 24
	HLenCapsuleCmd  = 72
	HLenCapsuleResp = 24
	HLenData        = 24 // H2CData, C2HData and R2T
)

// HLen returns the header length the spec fixes for t, or 0 for an unknown
// type.
func HLen(t PDUType) int {
	switch t {
	case TypeICReq, TypeICResp:
		return HLenIC
	case TypeH2CTermReq, TypeC2HTermReq:
		return HLenTermReq
	case TypeCapsuleCmd:
		return HLenCapsuleCmd
	case TypeCapsuleResp:
		return HLenCapsuleResp
	case TypeH2CData, TypeC2HData, TypeR2T:
		return HLenData
	}
	return 0
}

// Common header flags.
const (
	FlagHDGST   = 1 << 0 // header digest present
	FlagDDGST   = 1 << 1 // data digest present
	FlagLastPDU = 1 << 2 // H2CData/C2HData: last PDU of the transfer
	FlagSuccess = 1 << 3 // C2HData: command succeeded, no CapsuleResp follows
)

// CommonHeaderSize is the size of the header every PDU starts with; DigestSize
// the size of a header or data digest.
const (
	CommonHeaderSize = 8
	DigestSize       = 4
	// MaxTermReqData is the largest error data a TermReq carries (the
	// offending PDU header): plen is 24..152.
	MaxTermReqData = 128
)

// CommonHeader is the 8-byte header that starts every PDU.
type CommonHeader struct {
	Type  PDUType
	Flags uint8
	HLEN  uint8
	PDO   uint8
	PLEN  uint32
}

// Put encodes h into the first 8 bytes of b.
func (h *CommonHeader) Put(b []byte) {
	_ = b[7]
	b[0] = byte(h.Type)
	b[1] = h.Flags
	b[2] = h.HLEN
	b[3] = h.PDO
	binary.LittleEndian.PutUint32(b[4:], h.PLEN)
}

// Decode decodes h from the first 8 bytes of b.
func (h *CommonHeader) Decode(b []byte) error {
	if len(b) < CommonHeaderSize {
		return errShort
	}
	h.Type = PDUType(b[0])
	h.Flags = b[1]
	h.HLEN = b[2]
	h.PDO = b[3]
	h.PLEN = binary.LittleEndian.Uint32(b[4:])
	return nil
}

func (h CommonHeader) String() string {
	return fmt.Sprintf("%v flags=%#02x hlen=%d pdo=%d plen=%d", h.Type, h.Flags, h.HLEN, h.PDO, h.PLEN)
}

// PDU is one of *ICReq, *ICResp, *TermReq, *CapsuleCmd, *CapsuleResp,
// *H2CData, *C2HData and *R2T. Its value holds the type-specific header
// fields; the common header (flags, lengths, offsets) is derived when the
// PDU is encoded, and data travels beside it.
type PDU interface {
	Type() PDUType
	// put writes the type-specific header bytes (offset 8 to HLEN) into b,
	// which is exactly HLEN-8 bytes long and zeroed.
	put(b []byte)
	// decode reads them back from b (HLEN-8 bytes).
	decode(b []byte, flags uint8)
	// flags returns the type-specific flag bits (LAST_PDU, SUCCESS).
	flags() uint8
}

// Digests says which digests a connection negotiated.
type Digests struct {
	Header bool
	Data   bool
}

// EncodeOptions controls how AppendPDU lays a PDU out.
type EncodeOptions struct {
	Digests
	// PDA is the receiver's PDU data alignment, 0's based in dwords: CPDA
	// for PDUs the host sends, HPDA for PDUs the controller sends. Data
	// starts at a multiple of (PDA+1)*4 bytes.
	PDA uint8
}

// dataOffset returns where data starts in a PDU with header length hlen.
func (o EncodeOptions) dataOffset(hlen int) int {
	off := hlen
	if o.Header {
		off += DigestSize
	}
	if o.PDA > 0 {
		align := (int(o.PDA) + 1) * 4
		off = (off + align - 1) / align * align
	}
	return off
}

// AppendPDU appends the wire encoding of p with data to b: common header,
// type-specific header, header digest, padding up to PDO, data and data
// digest, as o asks. TermReq and IC PDUs never carry digests; a TermReq's
// data is its error data and follows the header directly.
func AppendPDU(b []byte, p PDU, data []byte, o EncodeOptions) []byte {
	t := p.Type()
	hlen := HLen(t)
	ch := CommonHeader{Type: t, Flags: p.flags(), HLEN: uint8(hlen)}
	plen := hlen
	digestible := t != TypeICReq && t != TypeICResp && t != TypeH2CTermReq && t != TypeC2HTermReq
	hd := digestible && o.Header
	dd := digestible && o.Data && len(data) > 0
	if hd {
		ch.Flags |= FlagHDGST
		plen += DigestSize
	}
	if len(data) > 0 {
		if digestible {
			off := o.dataOffset(hlen)
			ch.PDO = uint8(off)
			plen = off
		}
		plen += len(data)
		if dd {
			ch.Flags |= FlagDDGST
			plen += DigestSize
		}
	}
	ch.PLEN = uint32(plen)

	start := len(b)
	b = grow(b, plen)
	out := b[start:]
	ch.Put(out)
	spec := out[CommonHeaderSize:hlen]
	clear(spec)
	p.put(spec)
	pos := hlen
	if hd {
		binary.LittleEndian.PutUint32(out[pos:], Checksum(out[:hlen]))
		pos += DigestSize
	}
	if len(data) > 0 {
		if digestible {
			clear(out[pos:ch.PDO])
			pos = int(ch.PDO)
		}
		copy(out[pos:], data)
		pos += len(data)
		if dd {
			binary.LittleEndian.PutUint32(out[pos:], Checksum(data))
		}
	}
	return b
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}

// newPDU returns a zero PDU value of type t, or nil for an unknown type.
func newPDU(t PDUType) PDU {
	switch t {
	case TypeICReq:
		return new(ICReq)
	case TypeICResp:
		return new(ICResp)
	case TypeH2CTermReq:
		return &TermReq{H2C: true}
	case TypeC2HTermReq:
		return new(TermReq)
	case TypeCapsuleCmd:
		return new(CapsuleCmd)
	case TypeCapsuleResp:
		return new(CapsuleResp)
	case TypeH2CData:
		return new(H2CData)
	case TypeC2HData:
		return new(C2HData)
	case TypeR2T:
		return new(R2T)
	}
	return nil
}
