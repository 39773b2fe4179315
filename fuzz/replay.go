package fuzz

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// ReplayFormat names the replay file format and its version.
const ReplayFormat = "nvmftest-fuzz-replay/1"

// ReplayFile is a finding's reproducer as JSON: the PDU bytes per
// connection, in the order they are sent, and how the finding was made.
//
//	{
//	  "format": "nvmftest-fuzz-replay/1",
//	  "signature": "liveness: set CapsuleCmd.PDO",
//	  "steps": [
//	    {"conn": 0, "pdu": "ICReq", "hex": "00008000800000000000..."},
//	    {"conn": 0, "pdu": "CapsuleCmd", "hex": "04000d00...", "fix": ["digest"], "split": 0}
//	  ]
//	}
//
// Steps go out in order; a step's conn is opened (TCP) when first used
// and every connection stays open until the last step, after which the
// sender waits for the target's answers. "fix" names fields filled in
// at send time from what the target answered: "digest" recomputes the
// header and data digests the flags announce, "cntlid" puts the admin
// Connect's controller ID into an I/O Connect's data, "ttag" the last
// R2T's transfer tag into an H2CData. "split", if not 0, sends the bytes
// in two writes cut at that offset. The other fields describe the
// finding and are not needed to replay it.
type ReplayFile struct {
	Format    string         `json:"format"`
	Signature string         `json:"signature,omitempty"`
	Oracle    string         `json:"oracle,omitempty"`
	Detail    string         `json:"detail,omitempty"`
	Target    string         `json:"target,omitempty"`
	SubNQN    string         `json:"subnqn,omitempty"`
	HostNQN   string         `json:"hostnqn,omitempty"`
	Seed      uint64         `json:"seed"`
	Case      uint64         `json:"case"`
	Origin    string         `json:"origin,omitempty"`
	Mutations []Mutation     `json:"mutations,omitempty"`
	Steps     []ReplayStep   `json:"steps"`
	Extra     map[string]any `json:"extra,omitempty"`
}

// ReplayStep is one step of a ReplayFile.
type ReplayStep struct {
	Conn  int      `json:"conn"`
	PDU   string   `json:"pdu,omitempty"`
	Hex   string   `json:"hex"`
	Fix   []string `json:"fix,omitempty"`
	Split int      `json:"split,omitempty"`
}

// NewReplayFile describes c as a replay file.
func NewReplayFile(c *Case) *ReplayFile {
	rf := &ReplayFile{Format: ReplayFormat, Case: c.ID, Origin: c.Origin, Mutations: c.Muts}
	for _, s := range c.Steps {
		rf.Steps = append(rf.Steps, ReplayStep{Conn: s.Conn, PDU: typeName(s.Bytes), Hex: hex.EncodeToString(s.Bytes), Fix: s.Fix.names(), Split: s.Split})
	}
	return rf
}

// ToCase returns the case the file describes.
func (rf *ReplayFile) ToCase() (*Case, error) {
	if rf.Format != ReplayFormat {
		return nil, fmt.Errorf("format %q, want %q", rf.Format, ReplayFormat)
	}
	if len(rf.Steps) == 0 {
		return nil, errors.New("no steps")
	}
	c := &Case{ID: rf.Case, Origin: rf.Origin, Muts: rf.Mutations}
	for i, s := range rf.Steps {
		b, err := hex.DecodeString(strings.Join(strings.Fields(s.Hex), ""))
		if err != nil {
			return nil, fmt.Errorf("step %d: hex: %v", i+1, err)
		}
		fix, err := parseFix(s.Fix)
		if err != nil {
			return nil, fmt.Errorf("step %d: %v", i+1, err)
		}
		if s.Conn < 0 || s.Conn > 1024 {
			return nil, fmt.Errorf("step %d: conn %d out of range 0..1024", i+1, s.Conn)
		}
		if s.Split < 0 || (s.Split > 0 && s.Split >= len(b)) {
			return nil, fmt.Errorf("step %d: split %d outside 1..%d", i+1, s.Split, len(b)-1)
		}
		c.Steps = append(c.Steps, Step{Conn: s.Conn, Bytes: b, Fix: fix, Split: s.Split})
	}
	return c, nil
}

// WriteReplay writes rf to path.
func WriteReplay(path string, rf *ReplayFile) error {
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReplay reads a replay file.
func ReadReplay(path string) (*ReplayFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rf ReplayFile
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("%s: not a replay file: %v", path, err)
	}
	if _, err := rf.ToCase(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &rf, nil
}

// HexDump renders the case's steps as annotated hex dumps; limit, if
// positive, bounds the bytes shown per step.
func HexDump(c *Case, limit int) string {
	var b strings.Builder
	for i, s := range c.Steps {
		fmt.Fprintf(&b, "step %d, connection %d: %s, %d bytes", i+1, s.Conn, typeName(s.Bytes), len(s.Bytes))
		if f := s.Fix.names(); len(f) > 0 {
			fmt.Fprintf(&b, " (fixed at send time: %s)", strings.Join(f, ", "))
		}
		if s.Split > 0 {
			fmt.Fprintf(&b, " (sent in two writes cut at %d)", s.Split)
		}
		b.WriteString("\n")
		data := s.Bytes
		if limit > 0 && len(data) > limit {
			data = data[:limit]
		}
		b.WriteString(hex.Dump(data))
		if len(data) < len(s.Bytes) {
			fmt.Fprintf(&b, "... %d more bytes (the replay file has them all)\n", len(s.Bytes)-len(data))
		}
	}
	return b.String()
}

// ReplayConfig says where and how to replay a case.
type ReplayConfig struct {
	Addr string
	Identity
	ResponseTimeout time.Duration
	LiveTimeout     time.Duration
}

// ReplayResult is what a replay showed.
type ReplayResult struct {
	// Reproduced: the liveness oracle failed after the case.
	Reproduced bool
	Reaction   Reaction
	// Liveness is the oracle's error when Reproduced.
	Liveness error
}

// Replay checks that the target is alive (an error if not: nothing is
// sent), sends c and runs the liveness oracle, twice a second apart.
// rec, if set, records the case's connections.
func Replay(ctx context.Context, cfg ReplayConfig, c *Case, rec capture.Recorder) (ReplayResult, error) {
	cfg.Identity = cfg.Identity.withDefaults()
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 300 * time.Millisecond
	}
	if cfg.LiveTimeout <= 0 {
		cfg.LiveTimeout = 5 * time.Second
	}
	if err := Probe(ctx, cfg.Addr, cfg.Identity, cfg.LiveTimeout); err != nil {
		return ReplayResult{}, fmt.Errorf("target not alive before the replay: %w", err)
	}
	e := &Executor{Addr: cfg.Addr, ResponseTimeout: cfg.ResponseTimeout}
	out := e.Run(ctx, c, rec)
	res := ReplayResult{Reaction: out.Reaction}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	err := Probe(ctx, cfg.Addr, cfg.Identity, cfg.LiveTimeout)
	if err != nil {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Second):
		}
		err = Probe(ctx, cfg.Addr, cfg.Identity, cfg.LiveTimeout)
	}
	res.Reproduced, res.Liveness = err != nil, err
	return res, nil
}

// Retarget rewrites the Connect data of c's Connects for another
// subsystem or host: SUBNQN (unless it is the discovery NQN) and, if
// hostNQN is not empty, HOSTNQN. Nothing else changes, fixes included.
func Retarget(c *Case, subNQN, hostNQN string) {
	for i := range c.Steps {
		b := c.Steps[i].Bytes
		if len(b) < tcp.HLenCapsuleCmd || b[0] != byte(tcp.TypeCapsuleCmd) || b[8] != nvme.AdminFabrics || b[12] != nvme.FabricsConnect {
			continue
		}
		pdo := int(b[3])
		if pdo < tcp.HLenCapsuleCmd || len(b) < pdo+nvme.ConnectDataOffHOSTNQN+256 {
			continue
		}
		sub := b[pdo+nvme.ConnectDataOffSUBNQN : pdo+nvme.ConnectDataOffSUBNQN+256]
		if subNQN != "" && nulString(sub) != nvme.DiscoveryNQN {
			clear(sub)
			copy(sub, subNQN)
		}
		if hostNQN != "" {
			host := b[pdo+nvme.ConnectDataOffHOSTNQN : pdo+nvme.ConnectDataOffHOSTNQN+256]
			clear(host)
			copy(host, hostNQN)
		}
	}
}

func nulString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
