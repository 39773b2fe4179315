package fuzz

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

var testID = Identity{SubNQN: "nqn.2014-08.org.example:sub", HostNQN: "nqn.2014-08.org.example:host"}.withDefaults()

// TestGenerateDeterministic: the same seed and case number give the same
// case, byte for byte; another seed gives other cases.
func TestGenerateDeterministic(t *testing.T) {
	seeds, err := BuiltinSeeds(testID)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for i := range uint64(200) {
		a := Generate(42, i, seeds, false, testID)
		b := Generate(42, i, seeds, false, testID)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("case %d differs between two generations:\n%s\n%s", i, a.Describe(), b.Describe())
		}
		if !reflect.DeepEqual(a, Generate(43, i, seeds, false, testID)) {
			differ++
		}
	}
	if differ < 190 {
		t.Errorf("seeds 42 and 43 give the same case %d times in 200", 200-differ)
	}
	// Generating must not change the seeds it clones.
	again, _ := BuiltinSeeds(testID)
	if !reflect.DeepEqual(seeds, again) {
		t.Error("Generate modified a seed case")
	}
}

func sameSteps(a, b []Step) bool {
	return slices.EqualFunc(a, b, func(x, y Step) bool {
		return x.Conn == y.Conn && x.Fix == y.Fix && x.Split == y.Split && bytes.Equal(x.Bytes, y.Bytes)
	})
}

// TestMutatorsDoWhatTheySay applies every mutator many times to grammar
// and seed cases: each changes the case, and the change is the one its
// Mutation records.
func TestMutatorsDoWhatTheySay(t *testing.T) {
	seeds, err := BuiltinSeeds(testID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutators {
		t.Run(m.name, func(t *testing.T) {
			applied := 0
			for i := range 300 {
				r := rand.New(rand.NewPCG(uint64(i), 99))
				var base *Case
				if i%3 == 0 {
					base = seeds[i%len(seeds)].Clone()
				} else {
					base = grammarCase(r, testID)
				}
				c := base.Clone()
				mu, ok := m.apply(r, c, testID)
				if !ok {
					continue
				}
				applied++
				if mu.Op != m.name {
					t.Fatalf("mutator %s records op %q", m.name, mu.Op)
				}
				if sameSteps(base.Steps, c.Steps) {
					t.Fatalf("case %d: %v changed nothing", i, mu)
				}
				checkMutation(t, base, c, mu)
			}
			if applied < 100 {
				t.Errorf("applied only %d times in 300", applied)
			}
		})
	}
}

func checkMutation(t *testing.T, base, c *Case, mu Mutation) {
	t.Helper()
	n0, n1 := len(base.Steps), len(c.Steps)
	switch mu.Op {
	case "set":
		b := c.Steps[mu.Step].Bytes
		var f *field
		for _, x := range fieldsOf(base.Steps[mu.Step].Bytes) {
			if typeName(base.Steps[mu.Step].Bytes)+"."+x.Name == mu.Field {
				f = &x
			}
		}
		if f == nil {
			t.Fatalf("%v: no such field in the PDU", mu)
		}
		off := f.Off
		if f.Data {
			off += int(b[3])
			if f.Name == "ConnectData.SUBNQN" || f.Name == "ConnectData.HOSTNQN" {
				return // the value is a string; the bytes changed (checked above)
			}
		}
		if got := getField(b, off, f.Size); got != mu.Value {
			t.Fatalf("%v: field reads %d", mu, got)
		}
		if c.Steps[mu.Step].Fix&f.Fix != 0 {
			t.Fatalf("%v: the fix that would overwrite it is still on", mu)
		}
	case "truncate":
		if len(c.Steps[mu.Step].Bytes) != int(mu.Value) || mu.Value >= uint64(len(base.Steps[mu.Step].Bytes)) {
			t.Fatalf("%v: %d -> %d bytes", mu, len(base.Steps[mu.Step].Bytes), len(c.Steps[mu.Step].Bytes))
		}
	case "split":
		if s := c.Steps[mu.Step].Split; s != int(mu.Value) || s <= 0 || s >= len(c.Steps[mu.Step].Bytes) {
			t.Fatalf("%v: split %d", mu, s)
		}
	case "duplicate", "insert":
		if n1 != n0+1 {
			t.Fatalf("%v: %d -> %d steps", mu, n0, n1)
		}
		if mu.Op == "duplicate" && !bytes.Equal(c.Steps[mu.Step].Bytes, c.Steps[mu.Step+1].Bytes) {
			t.Fatalf("%v: the copy differs", mu)
		}
	case "repeat":
		if n1 != n0+int(mu.Value) {
			t.Fatalf("%v: %d -> %d steps", mu, n0, n1)
		}
	case "delete":
		if n1 != n0-1 {
			t.Fatalf("%v: %d -> %d steps", mu, n0, n1)
		}
	case "swap":
		j := int(mu.Value)
		if !bytes.Equal(c.Steps[mu.Step].Bytes, base.Steps[j].Bytes) || !bytes.Equal(c.Steps[j].Bytes, base.Steps[mu.Step].Bytes) {
			t.Fatalf("%v: not swapped", mu)
		}
	case "move":
		if c.Steps[mu.Step].Conn != int(mu.Value) || base.Steps[mu.Step].Conn == int(mu.Value) {
			t.Fatalf("%v: conn %d -> %d", mu, base.Steps[mu.Step].Conn, c.Steps[mu.Step].Conn)
		}
	case "resize":
		d := int(int64(mu.Value))
		if len(c.Steps[mu.Step].Bytes) != len(base.Steps[mu.Step].Bytes)+d {
			t.Fatalf("%v: %d -> %d bytes", mu, len(base.Steps[mu.Step].Bytes), len(c.Steps[mu.Step].Bytes))
		}
	case "havoc":
		a, b := base.Steps[mu.Step].Bytes, c.Steps[mu.Step].Bytes
		diff := 0
		for k := range a {
			if a[k] != b[k] {
				diff++
			}
		}
		if diff == 0 || diff > int(mu.Value) {
			t.Fatalf("%v: %d bytes differ", mu, diff)
		}
	default:
		t.Fatalf("unknown op %q", mu.Op)
	}
}

// TestMutateReachesEveryField: over a few thousand grammar cases every field of
// the table is set at least once, and the PDO of a Connect with data is
// set inside its header (where SPDK v26.05 crashes) without being told.
func TestMutateReachesEveryField(t *testing.T) {
	seen := map[string]bool{}
	pdoInHeader := 0
	for i := range uint64(8000) {
		c := Generate(5, i, nil, false, testID)
		for _, m := range c.Muts {
			if m.Op == "set" {
				seen[m.Field] = true
			}
		}
		for _, s := range c.Steps {
			if b := s.Bytes; len(b) > tcp.HLenCapsuleCmd && b[0] == 4 && b[8] == nvme.AdminFabrics && b[12] == nvme.FabricsConnect && b[3] < tcp.HLenCapsuleCmd {
				pdoInHeader++
			}
		}
	}
	for _, name := range allFieldNames() {
		if !seen[name] {
			t.Errorf("field %s never set", name)
		}
	}
	if pdoInHeader == 0 {
		t.Error("no Connect with PDO inside its header in 8000 cases")
	}
	t.Logf("%d of 8000 cases hold a Connect with PDO inside the header", pdoInHeader)
}

// TestFixes: after a field is set, the digests are recomputed over the
// bytes as sent (the PDU parses with digests on), the controller ID of
// the admin Connect goes into an I/O Connect, the R2T's tag into an
// H2CData.
func TestFixes(t *testing.T) {
	b := newBuilder(testID)
	b.enc[0] = tcp.EncodeOptions{Digests: tcp.Digests{Header: true, Data: true}}
	b.connect(0, 1, testID.SubNQN)
	b.add(0, &tcp.H2CData{CCCID: 9, TTAG: 1, DATAL: 512, Last: true}, make([]byte, 512), FixTTAG)
	conn, h2c := b.steps[0], b.steps[1]
	if conn.Fix != FixDigest|FixCNTLID || h2c.Fix != FixDigest|FixTTAG {
		t.Fatalf("fixes %v %v", conn.Fix.names(), h2c.Fix.names())
	}
	binary.LittleEndian.PutUint32(conn.Bytes[56:], 1234) // KATO
	out := applyFixes(&conn, 0x4321, true, nil)
	rules := tcp.Rules{Controller: true, Digests: tcp.Digests{Header: true, Data: true}}
	if _, _, data, _, err := tcp.Parse(out, &rules); err != nil {
		t.Fatalf("fixed Connect does not parse: %v", err)
	} else if got := binary.LittleEndian.Uint16(data[16:]); got != 0x4321 {
		t.Errorf("CNTLID %#x, want 0x4321", got)
	}
	out = applyFixes(&h2c, 0, false, func(cccid uint16) (uint16, bool) { return 77, cccid == 9 })
	p, _, _, _, err := tcp.Parse(out, &rules)
	if err != nil {
		t.Fatalf("fixed H2CData does not parse: %v", err)
	}
	if p.(*tcp.H2CData).TTAG != 77 {
		t.Errorf("TTAG %d, want 77", p.(*tcp.H2CData).TTAG)
	}
	// Without the fix the digest stays as the mutation left it.
	conn.Fix &^= FixDigest
	conn.Bytes[56] ^= 1
	if _, _, _, _, err := tcp.Parse(applyFixes(&conn, 0, false, nil), &rules); err == nil {
		t.Error("a corrupted header digest parsed once the fix was off")
	}
}

// TestBuiltinSeeds: the Linux captures give one case each: every host
// PDU of the four connections, the Connect data rewritten for the
// subsystem under test, the I/O Connects and the H2CData marked for
// fixing.
func TestBuiltinSeeds(t *testing.T) {
	seeds, err := BuiltinSeeds(testID)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) != 2 {
		t.Fatalf("%d seeds, want 2", len(seeds))
	}
	for _, c := range seeds {
		count := map[tcp.PDUType]int{}
		ioConnects := 0
		for _, s := range c.Steps {
			count[s.Type()]++
			b := s.Bytes
			if s.Type() == tcp.TypeCapsuleCmd && b[8] == nvme.AdminFabrics && b[12] == nvme.FabricsConnect {
				var cd nvme.ConnectData
				_ = cd.Decode(b[b[3]:])
				if cd.SubNQN != testID.SubNQN && cd.SubNQN != nvme.DiscoveryNQN || cd.HostNQN != testID.HostNQN {
					t.Errorf("%s: Connect data not rewritten: %q %q", c.Origin, cd.SubNQN, cd.HostNQN)
				}
				if binary.LittleEndian.Uint16(b[50:]) != 0 {
					ioConnects++
					if s.Fix&FixCNTLID == 0 {
						t.Errorf("%s: I/O Connect without the CNTLID fix", c.Origin)
					}
				}
			}
			if s.Type() == tcp.TypeH2CData && s.Fix&FixTTAG == 0 {
				t.Errorf("%s: H2CData without the TTAG fix", c.Origin)
			}
		}
		if count[tcp.TypeICReq] != 4 || count[tcp.TypeCapsuleCmd] != 64 || count[tcp.TypeH2CData] != 1 || ioConnects != 2 || c.Conns() != 4 {
			t.Errorf("%s: %v, %d I/O Connects, %d connections; want 4 ICReq, 64 CapsuleCmd, 1 H2CData, 2, 4", c.Origin, count, ioConnects, c.Conns())
		}
	}
}
