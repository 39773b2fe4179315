package fuzz

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestReplayFileRoundTrip: a case written as a replay file reads back
// the same: bytes, connections, fixes and splits.
func TestReplayFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	seeds, _ := BuiltinSeeds(testID)
	for i := range uint64(12) {
		c := Generate(3, i, nil, false, testID)
		if i < 2 {
			c = seeds[i].Clone()
		}
		c.Steps[0].Split = min(1, len(c.Steps[0].Bytes)-1)
		path := filepath.Join(dir, "c.replay.json")
		rf := NewReplayFile(c)
		rf.Signature = "liveness: set CapsuleCmd.PDO"
		if err := WriteReplay(path, rf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadReplay(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := back.ToCase()
		if err != nil {
			t.Fatal(err)
		}
		for k := range c.Steps {
			if len(c.Steps[k].Bytes) == 0 {
				c.Steps[k].Bytes = []byte{} // hex of nothing reads back as empty, not nil
			}
		}
		if !reflect.DeepEqual(got.Steps, c.Steps) || got.ID != c.ID || got.Origin != c.Origin || back.Signature != rf.Signature {
			t.Fatalf("case %d does not round-trip", i)
		}
	}
}

// TestReplayFileErrors: what is not a replay file is refused with the
// reason.
func TestReplayFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{`{"format":"other/1","steps":[{"conn":0,"hex":"00"}]}`, "format"},
		{`{"format":"nvmftest-fuzz-replay/1","steps":[]}`, "no steps"},
		{`{"format":"nvmftest-fuzz-replay/1","steps":[{"conn":0,"hex":"0g"}]}`, "hex"},
		{`{"format":"nvmftest-fuzz-replay/1","steps":[{"conn":0,"hex":"0000","split":2}]}`, "split"},
		{`{"format":"nvmftest-fuzz-replay/1","steps":[{"conn":0,"hex":"00","fix":["crc"]}]}`, "unknown fix"},
		{`{"format":"nvmftest-fuzz-replay/1","steps":[{"conn":-1,"hex":"00"}]}`, "conn"},
		{`not json`, "not a replay file"},
	} {
		p := filepath.Join(dir, "bad.json")
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadReplay(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.body, err, tc.want)
		}
	}
}

// TestRetarget rewrites the subsystem and host NQNs of the Connects and
// nothing else: the discovery Connect keeps the discovery NQN.
func TestRetarget(t *testing.T) {
	seeds, _ := BuiltinSeeds(testID)
	c := seeds[0].Clone()
	Retarget(c, "nqn.2014-08.org.example:other", "nqn.2014-08.org.example:h2")
	again, _ := BuiltinSeeds(Identity{SubNQN: "nqn.2014-08.org.example:other", HostNQN: "nqn.2014-08.org.example:h2", HostID: testID.HostID})
	if !reflect.DeepEqual(c.Steps, again[0].Steps) {
		t.Error("Retarget differs from seeds loaded for the other identity")
	}
}
