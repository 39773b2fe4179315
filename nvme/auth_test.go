package nvme

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"
)

func TestFFDHEPrimes(t *testing.T) {
	// RFC 7919 appendix A: the first and last 96 bits of ffdhe2048.
	p := DHGroupPrime(DHGroupFFDHE2048)
	h := fmt.Sprintf("%X", p)
	if !strings.HasPrefix(h, "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1") || !strings.HasSuffix(h, "886B423861285C97FFFFFFFFFFFFFFFF") {
		t.Fatalf("ffdhe2048 = %s...%s", h[:48], h[len(h)-32:])
	}
	for id := uint8(DHGroupFFDHE2048); id <= DHGroupFFDHE8192; id++ {
		p := DHGroupPrime(id)
		if p.BitLen() != dhGroupBits(id) {
			t.Fatalf("%s: %d bits", DHGroupName(id), p.BitLen())
		}
		if id > DHGroupFFDHE3072 && testing.Short() {
			continue
		}
		// Safe primes: p and (p-1)/2 both prime. A wrong X would not be.
		q := new(big.Int).Rsh(p, 1)
		if !p.ProbablyPrime(1) || !q.ProbablyPrime(1) {
			t.Fatalf("%s is not a safe prime", DHGroupName(id))
		}
	}
}

func TestDHAgreement(t *testing.T) {
	for _, id := range []uint8{DHGroupFFDHE2048, DHGroupFFDHE4096} {
		a, pa, err := DHKeyPair(id)
		if err != nil {
			t.Fatal(err)
		}
		b, pb, _ := DHKeyPair(id)
		if len(pa) != DHGroupSize(id) {
			t.Fatalf("public value of %d bytes", len(pa))
		}
		s1, err1 := DHSharedSecret(id, a, pb)
		s2, err2 := DHSharedSecret(id, b, pa)
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Fatalf("%s: shared secrets differ (%v %v)", DHGroupName(id), err1, err2)
		}
		bad := make([]byte, DHGroupSize(id))
		bad[len(bad)-1] = 1
		if _, err := DHSharedSecret(id, a, bad); err == nil {
			t.Fatal("public value 1 accepted")
		}
	}
}

func TestDHCHAPSecret(t *testing.T) {
	for tr := uint8(0); tr <= HashSHA512; tr++ {
		k := NewDHCHAPKey(tr)
		s := k.String()
		got, err := ParseDHCHAPSecret(s)
		if err != nil || !reflect.DeepEqual(got, k) {
			t.Fatalf("%s: %v %+v", s, err, got)
		}
		// A changed character breaks the CRC.
		b := []byte(s)
		i := len("DHHC-1:00:") + 3
		b[i] ^= 1
		if _, err := ParseDHCHAPSecret(string(b)); err == nil {
			t.Fatalf("corrupt secret %s accepted", b)
		}
	}
	// Known answer (Python: base64(k + zlib.crc32(k) as <I)): 32 bytes 00..1f.
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	s := DHCHAPKey{Key: key}.String()
	if s != "DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:" {
		t.Fatalf("secret %s", s)
	}
	for _, bad := range []string{"", "DHHC-1:04:AAAA:", "DHHC-2:00:AAAA:", "DHHC-1:01:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8mQsf5AAAA:"} {
		if _, err := ParseDHCHAPSecret(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestDHCHAPResponses(t *testing.T) {
	// Both sides compute the same values from the same inputs, and each
	// input changes the result.
	hk := DHCHAPKey{Transform: HashSHA256, Key: bytes.Repeat([]byte{7}, 32)}
	tk := hk.Transformed("nqn.host")
	if len(tk) != 32 || bytes.Equal(tk, hk.Transformed("nqn.other")) {
		t.Fatal("transform ignores the NQN")
	}
	c := bytes.Repeat([]byte{1}, 32)
	r := HostResponse(HashSHA256, tk, c, 5, 1, 0, "nqn.host", "nqn.sub")
	if len(r) != 32 {
		t.Fatal(len(r))
	}
	for _, o := range [][]byte{
		HostResponse(HashSHA256, tk, c, 6, 1, 0, "nqn.host", "nqn.sub"),
		HostResponse(HashSHA256, tk, c, 5, 2, 0, "nqn.host", "nqn.sub"),
		HostResponse(HashSHA256, tk, c, 5, 1, 0, "nqn.hos", "tnqn.sub"),
		ControllerResponse(HashSHA256, tk, c, 5, 1, 0, "nqn.host", "nqn.sub"),
		HostResponse(HashSHA256, tk, AugmentedChallenge(HashSHA256, []byte("s"), c), 5, 1, 0, "nqn.host", "nqn.sub"),
	} {
		if bytes.Equal(o, r) {
			t.Fatal("response does not cover every input")
		}
	}
	if len(HostResponse(HashSHA512, tk, make([]byte, 64), 5, 1, 0, "a", "b")) != 64 {
		t.Fatal("sha512 length")
	}
}

// authSamples is one message of every kind.
func authSamples() []interface {
	Append([]byte) []byte
	Decode([]byte) error
} {
	return []interface {
		Append([]byte) []byte
		Decode([]byte) error
	}{
		&AuthNegotiate{TID: 3, Hashes: []uint8{1, 2, 3}, DHGroups: []uint8{0, 1, 2, 3, 4, 5}},
		&DHCHAPChallenge{TID: 3, HashID: 2, DHGroup: 1, Seq: 99, C: bytes.Repeat([]byte{5}, 48), DHV: bytes.Repeat([]byte{6}, 256)},
		&DHCHAPReply{TID: 3, CValid: true, Seq: 7, R: bytes.Repeat([]byte{1}, 32), C2: bytes.Repeat([]byte{2}, 32), DHV: []byte{9, 9}},
		&DHCHAPSuccess1{TID: 3, HL: 32, RValid: true, R: bytes.Repeat([]byte{4}, 32)},
		&DHCHAPSuccess2{TID: 3},
		&AuthFailure{TID: 3, Reason: 1, Explanation: AuthHashUnusable},
		&AuthFailure{TID: 3, Second: true, Reason: 1, Explanation: AuthFailed},
	}
}

func TestAuthMessagesRoundTrip(t *testing.T) {
	for _, m := range authSamples() {
		b := m.Append(nil)
		n := reflect.New(reflect.TypeOf(m).Elem()).Interface().(interface{ Decode([]byte) error })
		if err := n.Decode(b); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(n, m) {
			t.Fatalf("%T: %+v != %+v", m, n, m)
		}
		for i := range b {
			if err := n.Decode(b[:i]); err == nil && i < minAuthLen(m) {
				t.Fatalf("%T truncated to %d decodes", m, i)
			}
		}
	}
	// Golden bytes of a Linux host's AUTH_Negotiate (all hashes, all groups).
	neg := (&AuthNegotiate{TID: 0, Hashes: []uint8{1, 2, 3}, DHGroups: []uint8{0, 1, 2, 3, 4, 5}}).Append(nil)
	want := "0000000000000001" + "01000306" + "010203" + strings.Repeat("00", 27) + "000102030405" + strings.Repeat("00", 24)
	if hex.EncodeToString(neg) != want {
		t.Fatalf("negotiate\n%x\n%s", neg, want)
	}
	s := AuthSendCmd(1, 72)
	if secp, s0, s1, tl := DecodeAuthCmd(&s); secp != 0xE9 || s0 != 1 || s1 != 1 || tl != 72 || s.FCType() != FabricsAuthSend {
		t.Fatalf("auth send %+v", s)
	}
}

func minAuthLen(m interface{ Append([]byte) []byte }) int {
	switch v := m.(type) {
	case *DHCHAPChallenge:
		return 16 + len(v.C) + len(v.DHV)
	case *DHCHAPReply:
		return 16 + 2*len(v.R) + len(v.DHV)
	case *DHCHAPSuccess1:
		return 16 + int(v.HL)
	case *AuthNegotiate:
		return AuthNegotiateSize
	case *AuthFailure:
		return AuthFailureSize
	}
	return 16
}

func FuzzAuthMessages(f *testing.F) {
	for _, m := range authSamples() {
		f.Add(m.Append(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range authSamples() {
			if err := m.Decode(b); err != nil {
				continue
			}
			// What decodes re-encodes to something that decodes the same.
			b2 := m.Append(nil)
			n := reflect.New(reflect.TypeOf(m).Elem()).Interface().(interface{ Decode([]byte) error })
			if err := n.Decode(b2); err != nil || !reflect.DeepEqual(n, m) {
				t.Fatalf("%T: re-encoding does not round-trip: %v", m, err)
			}
		}
		_, _ = ParseDHCHAPSecret(string(b))
	})
}
