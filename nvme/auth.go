package nvme

// NVMe in-band authentication, DH-HMAC-CHAP (NVMe Base 2.0 section 8.13,
// TP 8006): the Authentication Send/Receive commands, the message formats
// they carry, the DHHC-1 secret representation and the computations both
// sides make. Pure: no I/O; randomness only where a caller asks for a key
// pair or a challenge.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"math/big"
	"strings"
	"sync"
)

// Authentication protocol identifiers (Authentication Send/Receive SECP,
// SPSP0, SPSP1).
const (
	AuthSECPDHCHAP = 0xE9
	AuthSPSP0      = 0x01
	AuthSPSP1      = 0x01
)

// Message classes (AUTH_Type) and identifiers (AUTH_Id).
const (
	AuthCommonMessages = 0x00
	AuthDHCHAPMessages = 0x01

	AuthNegotiateID = 0x00 // common
	AuthChallengeID = 0x01
	AuthReplyID     = 0x02
	AuthSuccess1ID  = 0x03
	AuthSuccess2ID  = 0x04
	AuthFailure2ID  = 0xF0 // common
	AuthFailure1ID  = 0xF1 // common

	AuthIDDHCHAP = 0x01 // protocol descriptor AUTHID
)

// Hash function identifiers.
const (
	HashSHA256 = 0x01
	HashSHA384 = 0x02
	HashSHA512 = 0x03
)

// Diffie-Hellman group identifiers.
const (
	DHGroupNull      = 0x00
	DHGroupFFDHE2048 = 0x01
	DHGroupFFDHE3072 = 0x02
	DHGroupFFDHE4096 = 0x03
	DHGroupFFDHE6144 = 0x04
	DHGroupFFDHE8192 = 0x05
)

// Failure reason code and explanations.
const (
	AuthFailureReasonFailed = 0x01

	AuthFailed            = 0x01
	AuthNotUsable         = 0x02
	AuthConcatMismatch    = 0x03
	AuthHashUnusable      = 0x04
	AuthDHGroupUnusable   = 0x05
	AuthIncorrectPayload  = 0x06
	AuthIncorrectProtocol = 0x07
)

// ErrAuthMessage is returned for a malformed authentication message.
var ErrAuthMessage = errors.New("nvme: malformed authentication message")

// AuthSendCmd builds an Authentication Send of tl bytes (DH-HMAC-CHAP).
func AuthSendCmd(cid uint16, tl uint32) SQE {
	s := fabricsCmd(cid, FabricsAuthSend)
	s.CDW10 = AuthSECPDHCHAP<<24 | AuthSPSP1<<16 | AuthSPSP0<<8
	s.CDW11 = tl
	return s
}

// AuthReceiveCmd builds an Authentication Receive of al bytes.
func AuthReceiveCmd(cid uint16, al uint32) SQE {
	s := fabricsCmd(cid, FabricsAuthReceive)
	s.CDW10 = AuthSECPDHCHAP<<24 | AuthSPSP1<<16 | AuthSPSP0<<8
	s.CDW11 = al
	return s
}

// DecodeAuthCmd returns the fields of an Authentication Send or Receive:
// SECP, SPSP0, SPSP1 and the transfer (TL) or allocation (AL) length.
func DecodeAuthCmd(s *SQE) (secp, spsp0, spsp1 uint8, length uint32) {
	return uint8(s.CDW10 >> 24), uint8(s.CDW10 >> 8), uint8(s.CDW10 >> 16), s.CDW11
}

// Byte offsets of SPSP0, SPSP1, SECP and TL/AL in the SQE (for PLOC).
const (
	AuthOffSPSP0 = 41
	AuthOffSPSP1 = 42
	AuthOffSECP  = 43
	AuthOffLen   = 44
)

// AuthHeader is the first bytes of every authentication message.
type AuthHeader struct {
	Type, ID uint8
	TID      uint16
}

// PeekAuth decodes the common header of an authentication message.
func PeekAuth(b []byte) (AuthHeader, error) {
	if len(b) < 6 {
		return AuthHeader{}, ErrAuthMessage
	}
	return AuthHeader{Type: b[0], ID: b[1], TID: binary.LittleEndian.Uint16(b[4:])}, nil
}

func authHeader(b []byte, typ, id uint8, tid uint16, n int) []byte {
	o := len(b)
	b = append(b, make([]byte, n)...)
	b[o], b[o+1] = typ, id
	binary.LittleEndian.PutUint16(b[o+4:], tid)
	return b
}

// AuthNegotiate is AUTH_Negotiate with one DH-HMAC-CHAP protocol
// descriptor.
type AuthNegotiate struct {
	TID      uint16
	SCC      uint8 // secure channel concatenation
	Hashes   []uint8
	DHGroups []uint8
}

// AuthNegotiateSize is the length of an AUTH_Negotiate with one descriptor.
const AuthNegotiateSize = 8 + 64

func (m *AuthNegotiate) Append(b []byte) []byte {
	o := len(b)
	b = authHeader(b, AuthCommonMessages, AuthNegotiateID, m.TID, AuthNegotiateSize)
	b[o+6] = m.SCC
	b[o+7] = 1 // NAPD
	d := b[o+8:]
	d[0] = AuthIDDHCHAP
	d[2] = uint8(copy(d[4:4+30], m.Hashes))
	d[3] = uint8(copy(d[4+30:4+60], m.DHGroups))
	return b
}

func (m *AuthNegotiate) Decode(b []byte) error {
	h, err := PeekAuth(b)
	if err != nil || len(b) < AuthNegotiateSize || h.Type != AuthCommonMessages || h.ID != AuthNegotiateID {
		return ErrAuthMessage
	}
	m.TID, m.SCC = h.TID, b[6]
	d := b[8:]
	if b[7] < 1 || d[0] != AuthIDDHCHAP || d[2] > 30 || d[3] > 30 {
		return ErrAuthMessage
	}
	m.Hashes = append(m.Hashes[:0], d[4:4+d[2]]...)
	m.DHGroups = append(m.DHGroups[:0], d[34:34+d[3]]...)
	return nil
}

// DHCHAPChallenge is DH-HMAC-CHAP_Challenge.
type DHCHAPChallenge struct {
	TID     uint16
	HashID  uint8
	DHGroup uint8
	Seq     uint32 // S1
	C       []byte // C1, HL bytes
	DHV     []byte // the controller's DH public value
}

func (m *DHCHAPChallenge) Append(b []byte) []byte {
	o := len(b)
	b = authHeader(b, AuthDHCHAPMessages, AuthChallengeID, m.TID, 16)
	b[o+6] = uint8(len(m.C))
	b[o+8], b[o+9] = m.HashID, m.DHGroup
	binary.LittleEndian.PutUint16(b[o+10:], uint16(len(m.DHV)))
	binary.LittleEndian.PutUint32(b[o+12:], m.Seq)
	b = append(b, m.C...)
	return append(b, m.DHV...)
}

func (m *DHCHAPChallenge) Decode(b []byte) error {
	h, err := PeekAuth(b)
	if err != nil || len(b) < 16 || h.Type != AuthDHCHAPMessages || h.ID != AuthChallengeID {
		return ErrAuthMessage
	}
	hl, dhvlen := int(b[6]), int(binary.LittleEndian.Uint16(b[10:]))
	if len(b) < 16+hl+dhvlen {
		return ErrAuthMessage
	}
	m.TID, m.HashID, m.DHGroup, m.Seq = h.TID, b[8], b[9], binary.LittleEndian.Uint32(b[12:])
	m.C = append(m.C[:0], b[16:16+hl]...)
	m.DHV = append(m.DHV[:0], b[16+hl:16+hl+dhvlen]...)
	return nil
}

// DHCHAPReply is DH-HMAC-CHAP_Reply. C2 is all zeroes (and CValid false)
// when the host does not authenticate the controller; it always takes HL
// bytes.
type DHCHAPReply struct {
	TID    uint16
	CValid bool
	Seq    uint32 // S2
	R      []byte // the host's response, HL bytes
	C2     []byte // the host's challenge to the controller, HL bytes
	DHV    []byte // the host's DH public value
}

func (m *DHCHAPReply) Append(b []byte) []byte {
	o := len(b)
	hl := len(m.R)
	b = authHeader(b, AuthDHCHAPMessages, AuthReplyID, m.TID, 16)
	b[o+6] = uint8(hl)
	if m.CValid {
		b[o+8] = 1
	}
	binary.LittleEndian.PutUint16(b[o+10:], uint16(len(m.DHV)))
	binary.LittleEndian.PutUint32(b[o+12:], m.Seq)
	b = append(b, m.R...)
	c2 := make([]byte, hl)
	copy(c2, m.C2)
	b = append(b, c2...)
	return append(b, m.DHV...)
}

func (m *DHCHAPReply) Decode(b []byte) error {
	h, err := PeekAuth(b)
	if err != nil || len(b) < 16 || h.Type != AuthDHCHAPMessages || h.ID != AuthReplyID {
		return ErrAuthMessage
	}
	hl, dhvlen := int(b[6]), int(binary.LittleEndian.Uint16(b[10:]))
	if len(b) < 16+2*hl+dhvlen {
		return ErrAuthMessage
	}
	m.TID, m.CValid, m.Seq = h.TID, b[8]&1 != 0, binary.LittleEndian.Uint32(b[12:])
	m.R = append(m.R[:0], b[16:16+hl]...)
	m.C2 = append(m.C2[:0], b[16+hl:16+2*hl]...)
	m.DHV = append(m.DHV[:0], b[16+2*hl:16+2*hl+dhvlen]...)
	return nil
}

// DHCHAPSuccess1 is DH-HMAC-CHAP_Success1. R (the controller's response)
// is meaningful only with RValid; HL bytes follow the header either way.
type DHCHAPSuccess1 struct {
	TID    uint16
	HL     uint8
	RValid bool
	R      []byte
}

func (m *DHCHAPSuccess1) Append(b []byte) []byte {
	o := len(b)
	b = authHeader(b, AuthDHCHAPMessages, AuthSuccess1ID, m.TID, 16)
	b[o+6] = m.HL
	if m.RValid {
		b[o+8] = 1
	}
	r := make([]byte, m.HL)
	copy(r, m.R)
	return append(b, r...)
}

func (m *DHCHAPSuccess1) Decode(b []byte) error {
	h, err := PeekAuth(b)
	if err != nil || len(b) < 16 || h.Type != AuthDHCHAPMessages || h.ID != AuthSuccess1ID {
		return ErrAuthMessage
	}
	m.TID, m.HL, m.RValid = h.TID, b[6], b[8]&1 != 0
	m.R = m.R[:0]
	if m.RValid {
		if len(b) < 16+int(m.HL) {
			return ErrAuthMessage
		}
		m.R = append(m.R, b[16:16+int(m.HL)]...)
	}
	return nil
}

// DHCHAPSuccess2 is DH-HMAC-CHAP_Success2.
type DHCHAPSuccess2 struct{ TID uint16 }

func (m *DHCHAPSuccess2) Append(b []byte) []byte {
	return authHeader(b, AuthDHCHAPMessages, AuthSuccess2ID, m.TID, 16)
}

func (m *DHCHAPSuccess2) Decode(b []byte) error {
	h, err := PeekAuth(b)
	if err != nil || len(b) < 16 || h.Type != AuthDHCHAPMessages || h.ID != AuthSuccess2ID {
		return ErrAuthMessage
	}
	m.TID = h.TID
	return nil
}

// AuthFailure is AUTH_Failure1 (controller to host, Second false) or
// AUTH_Failure2 (host to controller).
type AuthFailure struct {
	TID         uint16
	Second      bool
	Reason      uint8 // AuthFailureReasonFailed
	Explanation uint8
}

// AuthFailureSize is the length of an AUTH_Failure message.
const AuthFailureSize = 8

func (m *AuthFailure) Append(b []byte) []byte {
	id := uint8(AuthFailure1ID)
	if m.Second {
		id = AuthFailure2ID
	}
	o := len(b)
	b = authHeader(b, AuthCommonMessages, id, m.TID, AuthFailureSize)
	b[o+6], b[o+7] = m.Reason, m.Explanation
	return b
}

func (m *AuthFailure) Decode(b []byte) error {
	h, err := PeekAuth(b)
	if err != nil || len(b) < AuthFailureSize || h.Type != AuthCommonMessages || (h.ID != AuthFailure1ID && h.ID != AuthFailure2ID) {
		return ErrAuthMessage
	}
	m.TID, m.Second, m.Reason, m.Explanation = h.TID, h.ID == AuthFailure2ID, b[6], b[7]
	return nil
}

// HashLen is the digest length of a hash identifier (0 if unknown).
func HashLen(id uint8) int {
	switch id {
	case HashSHA256:
		return 32
	case HashSHA384:
		return 48
	case HashSHA512:
		return 64
	}
	return 0
}

func newHash(id uint8) func() hash.Hash {
	switch id {
	case HashSHA256:
		return sha256.New
	case HashSHA384:
		return sha512.New384
	case HashSHA512:
		return sha512.New
	}
	return nil
}

// HashName is the name of a hash identifier ("sha256" ...).
func HashName(id uint8) string {
	switch id {
	case HashSHA256:
		return "sha256"
	case HashSHA384:
		return "sha384"
	case HashSHA512:
		return "sha512"
	}
	return fmt.Sprintf("hash-%#x", id)
}

// ParseHashName maps "sha256", "hmac(sha256)" ... to an identifier.
func ParseHashName(s string) (uint8, error) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(s), "hmac("), ")")
	for id := uint8(HashSHA256); id <= HashSHA512; id++ {
		if HashName(id) == s {
			return id, nil
		}
	}
	return 0, fmt.Errorf("nvme: unknown hash %q", s)
}

// DHGroupName is "null", "ffdhe2048" ...
func DHGroupName(id uint8) string {
	if id == DHGroupNull {
		return "null"
	}
	if b := dhGroupBits(id); b > 0 {
		return fmt.Sprintf("ffdhe%d", b)
	}
	return fmt.Sprintf("dhgroup-%#x", id)
}

// ParseDHGroupName maps "null", "ffdhe2048" ... to an identifier.
func ParseDHGroupName(s string) (uint8, error) {
	s = strings.ToLower(s)
	for id := uint8(DHGroupNull); id <= DHGroupFFDHE8192; id++ {
		if DHGroupName(id) == s {
			return id, nil
		}
	}
	return 0, fmt.Errorf("nvme: unknown DH group %q", s)
}

// DHCHAPKey is a DH-HMAC-CHAP secret: the key and the hash (0: none) that
// transforms it.
type DHCHAPKey struct {
	Transform uint8
	Key       []byte
}

// ParseDHCHAPSecret parses "DHHC-1:hh:base64(key || crc32(key)):" as nvme
// gen-dhchap-key writes it. The key is 32, 48 or 64 bytes; hh is 00 (used
// as is) or the hash that transforms it.
func ParseDHCHAPSecret(s string) (DHCHAPKey, error) {
	var k DHCHAPKey
	rest, ok := strings.CutPrefix(s, "DHHC-1:")
	if !ok || len(rest) < 4 || rest[2] != ':' {
		return k, fmt.Errorf("nvme: a DH-HMAC-CHAP secret starts with \"DHHC-1:hh:\"")
	}
	switch rest[:2] {
	case "00":
	case "01":
		k.Transform = HashSHA256
	case "02":
		k.Transform = HashSHA384
	case "03":
		k.Transform = HashSHA512
	default:
		return k, fmt.Errorf("nvme: DH-HMAC-CHAP secret: unknown transform %q", rest[:2])
	}
	enc := strings.TrimSuffix(rest[3:], ":")
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return k, fmt.Errorf("nvme: DH-HMAC-CHAP secret: %w", err)
	}
	n := len(raw) - 4
	if n != 32 && n != 48 && n != 64 {
		return k, fmt.Errorf("nvme: DH-HMAC-CHAP secret: key of %d bytes (want 32, 48 or 64)", n)
	}
	if crc32.ChecksumIEEE(raw[:n]) != binary.LittleEndian.Uint32(raw[n:]) {
		return k, fmt.Errorf("nvme: DH-HMAC-CHAP secret: CRC mismatch")
	}
	if k.Transform != 0 && HashLen(k.Transform) != n {
		return k, fmt.Errorf("nvme: DH-HMAC-CHAP secret: %d-byte key with transform %s", n, HashName(k.Transform))
	}
	k.Key = raw[:n]
	return k, nil
}

// String formats k as a DHHC-1 secret.
func (k DHCHAPKey) String() string {
	raw := binary.LittleEndian.AppendUint32(append([]byte(nil), k.Key...), crc32.ChecksumIEEE(k.Key))
	return fmt.Sprintf("DHHC-1:%02x:%s:", k.Transform, base64.StdEncoding.EncodeToString(raw))
}

// NewDHCHAPKey returns a random key of the transform's length (32 bytes
// for none).
func NewDHCHAPKey(transform uint8) DHCHAPKey {
	n := HashLen(transform)
	if n == 0 {
		n = 32
	}
	k := DHCHAPKey{Transform: transform, Key: make([]byte, n)}
	_, _ = rand.Read(k.Key)
	return k
}

// Transformed is the key the responses are keyed with: the key itself, or
// HMAC-hash(key, nqn || "NVMe-over-Fabrics") with the secret's hash,
// where nqn is the host NQN for a host key and the subsystem NQN for a
// controller key.
func (k DHCHAPKey) Transformed(nqn string) []byte {
	if k.Transform == 0 {
		return append([]byte(nil), k.Key...)
	}
	m := hmac.New(newHash(k.Transform), k.Key)
	m.Write([]byte(nqn))
	m.Write([]byte("NVMe-over-Fabrics"))
	return m.Sum(nil)
}

// AugmentedChallenge is HMAC-hash(hash(sessionKey), c): the challenge a
// response covers when a DH exchange took place.
func AugmentedChallenge(hashID uint8, sessionKey, c []byte) []byte {
	h := newHash(hashID)()
	h.Write(sessionKey)
	m := hmac.New(newHash(hashID), h.Sum(nil))
	m.Write(c)
	return m.Sum(nil)
}

// HostResponse is the host's response R1 to challenge c (already augmented
// when DH is in use): HMAC(key, c || S1 || TID || SC_C || "HostHost" ||
// hostnqn || 00h || subnqn), key the transformed host key.
func HostResponse(hashID uint8, key, c []byte, seq uint32, tid uint16, scc uint8, hostnqn, subnqn string) []byte {
	return chapResponse(hashID, key, c, seq, tid, scc, "HostHost", hostnqn, subnqn)
}

// ControllerResponse is the controller's response R2 to the host's
// challenge c: HMAC(key, c || S2 || TID || SC_C || "Controller" || subnqn ||
// 00h || hostnqn), key the transformed controller key.
func ControllerResponse(hashID uint8, key, c []byte, seq uint32, tid uint16, scc uint8, hostnqn, subnqn string) []byte {
	return chapResponse(hashID, key, c, seq, tid, scc, "Controller", subnqn, hostnqn)
}

func chapResponse(hashID uint8, key, c []byte, seq uint32, tid uint16, scc uint8, who, nqn1, nqn2 string) []byte {
	m := hmac.New(newHash(hashID), key)
	m.Write(c)
	var b [7]byte
	binary.LittleEndian.PutUint32(b[0:], seq)
	binary.LittleEndian.PutUint16(b[4:], tid)
	b[6] = scc
	m.Write(b[:])
	m.Write([]byte(who))
	m.Write([]byte(nqn1))
	m.Write([]byte{0})
	m.Write([]byte(nqn2))
	return m.Sum(nil)
}

// FFDHE groups of RFC 7919: p = 2^b - 2^(b-64) + (floor(2^(b-130) e) + X)
// * 2^64 - 1, g = 2.
var ffdheX = map[uint8]struct {
	bits int
	x    int64
}{
	DHGroupFFDHE2048: {2048, 560316},
	DHGroupFFDHE3072: {3072, 2625351},
	DHGroupFFDHE4096: {4096, 5736041},
	DHGroupFFDHE6144: {6144, 15705020},
	DHGroupFFDHE8192: {8192, 10965728},
}

func dhGroupBits(id uint8) int { return ffdheX[id].bits }

var (
	primesMu sync.Mutex
	primes   = map[uint8]*big.Int{}
)

// eFloor is floor(2^n * e).
func eFloor(n int) *big.Int {
	const guard = 64
	one := new(big.Int).Lsh(big.NewInt(1), uint(n+guard))
	sum := new(big.Int).Set(one)
	term := new(big.Int).Set(one)
	for k := int64(1); term.Sign() > 0; k++ {
		term.Quo(term, big.NewInt(k))
		sum.Add(sum, term)
	}
	return sum.Rsh(sum, guard)
}

// DHGroupPrime is the prime of an FFDHE group (nil for null or unknown).
func DHGroupPrime(id uint8) *big.Int {
	g, ok := ffdheX[id]
	if !ok {
		return nil
	}
	primesMu.Lock()
	defer primesMu.Unlock()
	if p := primes[id]; p != nil {
		return p
	}
	b := uint(g.bits)
	p := new(big.Int).Lsh(big.NewInt(1), b)
	p.Sub(p, new(big.Int).Lsh(big.NewInt(1), b-64))
	m := eFloor(g.bits - 130)
	m.Add(m, big.NewInt(g.x))
	p.Add(p, m.Lsh(m, 64))
	p.Sub(p, big.NewInt(1))
	primes[id] = p
	return p
}

// DHGroupSize is the length in bytes of a group's public values (0 for
// null).
func DHGroupSize(id uint8) int { return dhGroupBits(id) / 8 }

// DHKeyPair makes an ephemeral key pair in an FFDHE group: a random
// exponent and g^x mod p, big-endian, padded to the group size.
func DHKeyPair(id uint8) (priv *big.Int, pub []byte, err error) {
	p := DHGroupPrime(id)
	if p == nil {
		return nil, nil, fmt.Errorf("nvme: no DH group %#x", id)
	}
	// 2x the group's security strength at least; 512 bits covers ffdhe8192.
	buf := make([]byte, 64)
	if _, err := rand.Read(buf); err != nil {
		return nil, nil, err
	}
	x := new(big.Int).SetBytes(buf)
	x.SetBit(x, 511, 1)
	y := new(big.Int).Exp(big.NewInt(2), x, p)
	return x, y.FillBytes(make([]byte, DHGroupSize(id))), nil
}

// DHSharedSecret is peer^priv mod p, big-endian, padded to the group size;
// a peer value outside 2..p-2 is refused.
func DHSharedSecret(id uint8, priv *big.Int, peer []byte) ([]byte, error) {
	p := DHGroupPrime(id)
	if p == nil {
		return nil, fmt.Errorf("nvme: no DH group %#x", id)
	}
	y := new(big.Int).SetBytes(peer)
	pm1 := new(big.Int).Sub(p, big.NewInt(1))
	if len(peer) != DHGroupSize(id) || y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(pm1) >= 0 {
		return nil, fmt.Errorf("nvme: DH public value out of range")
	}
	z := new(big.Int).Exp(y, priv, p)
	return z.FillBytes(make([]byte, DHGroupSize(id))), nil
}

// RandomBytes returns n random bytes (challenges).
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// RandomSeq returns a random non-zero sequence number.
func RandomSeq() uint32 {
	for {
		var b [4]byte
		_, _ = rand.Read(b[:])
		if v := binary.LittleEndian.Uint32(b[:]); v != 0 {
			return v
		}
	}
}

// EqualMAC compares two responses in constant time.
func EqualMAC(a, b []byte) bool { return len(a) == len(b) && hmac.Equal(a, b) }
