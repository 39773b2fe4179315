package target

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"

	"github.com/nvmftest/nvmftest/nvme"
)

// DefaultSubsystemNQN is the NQN of the subsystem DefaultConfig serves.
const DefaultSubsystemNQN = "nqn.2014-08.io.nvmftest:target"

// Size is a byte count written the way people write them: "4096", "64MiB",
// "1GB". It stays a string until Validate so that errors can quote it.
type Size string

// Bytes parses s; the empty string is 0.
func (s Size) Bytes() (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return humanize.ParseBytes(string(s))
}

func (s Size) mustBytes() uint64 {
	n, _ := s.Bytes()
	return n
}

// Listener modes: which controllers a listener serves.
const (
	ServeAll       = "all"       // NVM subsystems and the discovery subsystem (default)
	ServeIO        = "io"        // NVM subsystems only
	ServeDiscovery = "discovery" // the discovery subsystem only
)

// ListenerConfig is one TCP port the target listens on.
type ListenerConfig struct {
	// Address is host:port; port 0 picks a free one.
	Address string `yaml:"address"`
	// PortID is the NVMe port identifier reported in the discovery log
	// (default: position in the list, from 1).
	PortID uint16 `yaml:"port_id"`
	// Serve is ServeAll (default), ServeIO or ServeDiscovery.
	Serve string `yaml:"serve"`
	// ANAStates is the ANA state of each ANA group on this port, by group
	// ID: optimized (default), non-optimized, inaccessible,
	// persistent-loss or change.
	ANAStates map[uint32]string `yaml:"ana_states"`
}

func (l *ListenerConfig) servesIO() bool        { return l.Serve != ServeDiscovery }
func (l *ListenerConfig) servesDiscovery() bool { return l.Serve != ServeIO }

// Backend kinds.
const (
	BackendNull = "null"
	BackendMem  = "mem"
	BackendFile = "file"
)

// NamespaceConfig describes one namespace.
type NamespaceConfig struct {
	// NSID is the namespace ID; 0 picks the lowest free one.
	NSID uint32 `yaml:"nsid"`
	// Backend is "null", "mem" or "file".
	Backend string `yaml:"backend"`
	// Path is the file of a file backend (created if missing).
	Path string `yaml:"path"`
	// Size is the capacity; a file backend with no size uses the file's.
	Size Size `yaml:"size"`
	// BlockSize is the logical block size, 512 (default) or 4096.
	BlockSize uint32 `yaml:"block_size"`
	// ANAGroup is the namespace's ANA group ID, 1..MaxANAGroups (default 1).
	ANAGroup uint32 `yaml:"ana_group"`
}

// SubsystemConfig describes one NVM subsystem.
type SubsystemConfig struct {
	NQN          string            `yaml:"nqn"`
	Serial       string            `yaml:"serial"`
	Model        string            `yaml:"model"`
	AllowAnyHost bool              `yaml:"allow_any_host"`
	Hosts        []string          `yaml:"hosts"`
	Namespaces   []NamespaceConfig `yaml:"namespaces"`
	// Ports lists the PortIDs of the listeners exposing the subsystem;
	// empty means every listener that serves I/O.
	Ports []uint16 `yaml:"ports"`
}

// Config is the whole target configuration.
type Config struct {
	Listeners  []ListenerConfig  `yaml:"listeners"`
	Subsystems []SubsystemConfig `yaml:"subsystems"`

	// IOQueues is the number of I/O queues per controller (default 8).
	IOQueues int `yaml:"io_queues"`
	// QueueSize is the largest number of entries of a queue, MQES+1
	// (default 128).
	QueueSize int `yaml:"queue_size"`
	// InCapsuleDataSize is the largest in-capsule data of an I/O command;
	// IOCCSZ = (64 + this) / 16 (default 16KiB, as nvmet-tcp).
	InCapsuleDataSize Size `yaml:"in_capsule_data_size"`
	// MaxH2CData is announced in ICResp (default 128KiB).
	MaxH2CData Size `yaml:"max_h2c_data"`
	// C2HDataSize bounds the data of one C2HData PDU (default 128KiB).
	C2HDataSize Size `yaml:"c2h_data_size"`
	// MDTS is the largest data transfer of one command (default 1MiB),
	// a power of two from 8KiB to 1GiB.
	MDTS Size `yaml:"mdts"`
	// HeaderDigest and DataDigest say whether the digests are granted
	// when a host asks (default both).
	HeaderDigest bool `yaml:"header_digest"`
	DataDigest   bool `yaml:"data_digest"`
	// CPDA is the controller PDU data alignment asked of hosts (0..31).
	CPDA uint8 `yaml:"cpda"`
	// MaxHPDA is the largest host PDU data alignment accepted (default 31;
	// nvmet accepts only 0).
	MaxHPDA uint8 `yaml:"max_hpda"`
	// MinKATO is the least keep alive timeout the controller uses: a
	// smaller one asked for in Connect or Set Features is raised to it
	// (NVMe Base 2.2 3.9.1). MaxKATO refuses larger ones (Connect Invalid
	// Parameters, Keep Alive Timeout Invalid). 0: no bound. KATO 0
	// disables the timer either way.
	MinKATO time.Duration `yaml:"min_kato"`
	MaxKATO time.Duration `yaml:"max_kato"`
	// ICTimeout closes connections that send no ICReq in time (default
	// 10s). IdleTimeout closes connections that send nothing for that long
	// (default 0: never; keep alive covers live hosts).
	ICTimeout   time.Duration `yaml:"ic_timeout"`
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Version is the VS property: "1.4" or "2.0" (default).
	Version string `yaml:"version"`
	// C2HSuccess sends the SUCCESS flag on the last C2HData of a read
	// instead of a response capsule when the queue disabled SQ flow
	// control (default true).
	C2HSuccess bool `yaml:"c2h_success"`
	// InvalidLogPage answers an unknown log page with Invalid Log Page
	// (SPDK) instead of Invalid Field in Command (nvmet, default).
	InvalidLogPage bool `yaml:"invalid_log_page"`
	// DHCHAP lists the hosts that must pass NVMe in-band authentication
	// (DH-HMAC-CHAP) on every queue they connect to an NVM subsystem; see
	// DHCHAPHost.
	DHCHAP []DHCHAPHost `yaml:"dhchap"`
	// DataDigestFatal tears the connection down on a data digest error
	// (nvmet) instead of failing the command with Transient Transport
	// Error (default).
	DataDigestFatal bool `yaml:"data_digest_fatal"`
	// Capture, if set, is a directory (created if missing) that receives
	// a pcapng packet trace of every accepted connection.
	Capture string `yaml:"capture"`

	// Bounds on what a remote peer can make the target hold. Each is
	// pushed against by a peer that connects, announces or stops reading
	// more than a host needs; README "Hostile peers" lists what happens
	// at each.

	// MaxConnections bounds the connections open on one listener, from
	// accept on (default 1024; 0: no bound). One more is closed at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress bounds the connections one remote IP
	// address has open to the whole target (default 128; 0: no bound).
	// One more is closed at once.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// MaxAssociationsPerHost bounds the associations (controllers, NVM and
	// discovery) one host NQN holds (default 64; 0: no bound). The admin
	// Connect beyond it fails with Controller Busy (01h/81h), as does one
	// when every controller ID is in use.
	MaxAssociationsPerHost int `yaml:"max_associations_per_host"`
	// R2TBuffer bounds the buffers one connection holds for write data it
	// asked for with R2T and has not received (default 2MiB). Commands
	// beyond it wait, without a buffer and without an R2T, until earlier
	// ones complete; a command larger than the budget runs alone.
	R2TBuffer Size `yaml:"r2t_buffer"`
	// R2TTimeout is how long a host may take to send all the data one R2T
	// asked for (default 30s; 0: no bound). Past it the connection is
	// closed (with its association, on an admin queue).
	R2TTimeout time.Duration `yaml:"r2t_timeout"`
	// WriteBacklog bounds the responses and read data queued in the
	// target for a host that reads slower than the target answers
	// (default 2MiB; a peer that does not read holds at most about three
	// times this per connection, see README). Past it the connection's
	// receive loop waits for the host to read.
	WriteBacklog Size `yaml:"write_backlog"`
	// Poll makes every connection's receive loop poll its socket instead
	// of sleeping until data arrives, as SPDK's target does: lower
	// latency at the price of a core that spins while I/O flows. A
	// connection with nothing to read for PollIdle (default 1ms) sleeps
	// as usual until data comes, so idle hosts cost nothing.
	Poll     bool          `yaml:"poll"`
	PollIdle time.Duration `yaml:"poll_idle"`
	// WriteTimeout is how long a host may leave the target waiting to
	// write because it takes none of the queued bytes (default 30s; 0: no
	// bound). Past it the connection is closed. An idle_timeout below it
	// bounds such a wait too.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// DiscoveryKATO is the keep alive timeout a discovery association
	// gets when its Connect asks for none (KATO 0): the Discovery
	// controller activity timeout of NVMe Base 2.1 3.1.3.3 (default 2m,
	// as nvmet and SPDK; 0: none, such a peer may stay for ever).
	DiscoveryKATO time.Duration `yaml:"discovery_kato"`
	// FatalCloseWait is how long a connection stays open after the target
	// sent a C2HTermReq for a fatal transport error (default 30s; 0:
	// close at once). NVMe/TCP 1.0 3.5.1 has the host terminate the
	// connection and lets the controller do so only after 30 seconds:
	// meanwhile the target reads and discards what arrives, processes
	// nothing, and the connection counts against max_connections. The
	// association it belonged to ends at the error, not after the wait.
	FatalCloseWait time.Duration `yaml:"fatal_close_wait"`

	// Quirks are named deviations and allowed personalities the target
	// is told to have, for testing the conformance suite and hosts
	// against them (default none; see Quirks for the list).
	Quirks []string `yaml:"quirks"`
}

// baseConfig is every tunable at its default, with no listener and no
// subsystem.
func baseConfig() Config {
	return Config{
		IOQueues:          8,
		QueueSize:         128,
		InCapsuleDataSize: "16KiB",
		MaxH2CData:        "128KiB",
		C2HDataSize:       "128KiB",
		MDTS:              "1MiB",
		HeaderDigest:      true,
		DataDigest:        true,
		MaxHPDA:           31,
		ICTimeout:         10 * time.Second,
		Version:           "2.0",
		C2HSuccess:        true,

		MaxConnections:           1024,
		MaxConnectionsPerAddress: 128,
		MaxAssociationsPerHost:   64,
		R2TBuffer:                "2MiB",
		R2TTimeout:               30 * time.Second,
		WriteBacklog:             "2MiB",
		WriteTimeout:             30 * time.Second,
		DiscoveryKATO:            2 * time.Minute,
		FatalCloseWait:           30 * time.Second,
	}
}

// DefaultConfig serves one subsystem, DefaultSubsystemNQN, with one 256 MiB
// memory namespace to any host, on 127.0.0.1:4420 (I/O and discovery) and
// 127.0.0.1:8009 (discovery).
func DefaultConfig() Config {
	c := baseConfig()
	c.Listeners = []ListenerConfig{
		{Address: "127.0.0.1:4420", PortID: 1, Serve: ServeAll},
		{Address: "127.0.0.1:8009", PortID: 2, Serve: ServeDiscovery},
	}
	c.Subsystems = []SubsystemConfig{DefaultSubsystem(DefaultSubsystemNQN)}
	return c
}

// DefaultSubsystem is a subsystem open to any host with one 256 MiB memory
// namespace.
func DefaultSubsystem(nqn string) SubsystemConfig {
	return SubsystemConfig{
		NQN:          nqn,
		AllowAnyHost: true,
		Namespaces:   []NamespaceConfig{{NSID: 1, Backend: BackendMem, Size: "256MiB", BlockSize: 512}},
	}
}

// ParseConfig reads a YAML configuration. Keys it does not know are
// errors; tunables left out keep their defaults. The result is validated.
func ParseConfig(data []byte) (Config, error) {
	c := baseConfig()
	data = quoteNullBackend(data)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config: %s", explainYAMLError(err, data))
	}
	return c, c.Validate()
}

var (
	yamlLineRe    = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlUnknownRe = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	yamlTypeRe    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!\\w+ `(.*)` into (\\S+)$")
)

// explainYAMLError rewrites a YAML decoding error for people: one line, the
// line that is wrong, unknown keys with a "did you mean" and no Go types.
func explainYAMLError(err error, data []byte) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			msgs = append(msgs, explainYAMLField(strings.TrimSpace(e)))
		}
		return strings.Join(msgs, "; ")
	}
	m := yamlLineRe.FindStringSubmatch(err.Error())
	if m == nil {
		return strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", "; ")
	}
	// The parser names the line where the enclosing block began; the line
	// at fault is the first one at which the document stops parsing.
	lines := strings.SplitAfter(string(data), "\n")
	var v any
	for n := 1; n <= len(lines); n++ {
		if yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &v) != nil {
			return fmt.Sprintf("line %d: %s (check the indentation of %q and the lines above it)", n, m[2], strings.TrimRight(lines[n-1], "\r\n"))
		}
	}
	return "line " + m[1] + ": " + m[2]
}

// explainYAMLField rewrites one of the decoder's per-field errors.
func explainYAMLField(e string) string {
	if m := yamlUnknownRe.FindStringSubmatch(e); m != nil {
		known := yamlKeys[strings.TrimPrefix(m[3], "target.")]
		if best := closestKey(m[2], known); best != "" {
			return fmt.Sprintf("line %s: unknown key %q (did you mean %s?)", m[1], m[2], best)
		}
		return fmt.Sprintf("line %s: unknown key %q (known here: %s)", m[1], m[2], strings.Join(known, ", "))
	}
	if m := yamlTypeRe.FindStringSubmatch(e); m != nil {
		want := "a value of another kind"
		switch t := m[3]; {
		case strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "int"):
			want = "a whole number"
		case t == "bool":
			want = "true or false"
		case t == "time.Duration":
			want = "a duration (e.g. 10s, 2m)"
		case strings.HasPrefix(t, "[]"):
			want = "a list"
		case strings.HasPrefix(t, "map"), strings.HasPrefix(t, "target."):
			want = "a mapping (key: value lines)"
		case t == "string":
			want = "a string"
		}
		return fmt.Sprintf("line %s: %q is not %s", m[1], m[2], want)
	}
	return e
}

// yamlKeys lists the keys each configuration type takes, by Go type name.
var yamlKeys = func() map[string][]string {
	keys := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || keys[t.Name()] != nil {
			return
		}
		var l []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			l = append(l, name)
		}
		keys[t.Name()] = l
		for i := range t.NumField() {
			walk(t.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[Config]())
	return keys
}()

// closestKey returns the known key that key is most likely a misspelling
// of: the same once case and underscores are ignored, or within two
// edits; "" if none is close.
func closestKey(key string, known []string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s)) }
	best, bestD := "", 3
	for _, k := range known {
		if norm(k) == norm(key) {
			return k
		}
		if d := editDistance(norm(k), norm(key)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// quoteNullBackend turns "backend: null", which YAML reads as no value,
// into the string "null".
func quoteNullBackend(data []byte) []byte {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return data
	}
	changed := false
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if k.Value == "backend" && v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value != "" && v.Value != "~" {
					v.Tag, v.Style, changed = "!!str", yaml.DoubleQuotedStyle, true
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
	if !changed {
		return data
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		return data
	}
	return out
}

// LoadConfig reads and validates the YAML file at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %v", err)
	}
	return ParseConfig(data)
}

// ValidNQN reports whether s looks like an NVMe Qualified Name: at most 223
// bytes, "nqn.yyyy-mm.reverse-domain:..." or "nqn.2014-08.org.nvmexpress:uuid:...".
func ValidNQN(s string) bool {
	if len(s) < 12 || len(s) > 223 || !strings.HasPrefix(s, "nqn.") {
		return false
	}
	d := s[4:]
	if len(d) < 8 || d[4] != '-' {
		return false
	}
	if _, err := strconv.Atoi(d[:4]); err != nil {
		return false
	}
	if _, err := strconv.Atoi(d[5:7]); err != nil {
		return false
	}
	return d[7] == '.'
}

// Validate checks c and fills in defaults that depend on other fields. Its
// error says in one line what is wrong and how to fix it.
func (c *Config) Validate() error {
	if len(c.Listeners) == 0 {
		return errors.New("listeners: none configured (add one, e.g. address: 127.0.0.1:4420)")
	}
	if c.Capture != "" {
		if fi, err := os.Stat(c.Capture); err == nil && !fi.IsDir() {
			return fmt.Errorf("capture: %q is not a directory (give a directory for the packet traces)", c.Capture)
		}
	}
	ids := map[uint16]bool{}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			return fmt.Errorf("%s.address: %q is not host:port (use e.g. 127.0.0.1:4420)", p, l.Address)
		}
		if l.PortID == 0 {
			l.PortID = uint16(i + 1)
		}
		if ids[l.PortID] {
			return fmt.Errorf("%s.port_id: %d is used twice (give each listener its own port_id)", p, l.PortID)
		}
		ids[l.PortID] = true
		switch l.Serve {
		case "":
			l.Serve = ServeAll
		case ServeAll, ServeIO, ServeDiscovery:
		default:
			return fmt.Errorf("%s.serve: %q is not a mode (use all, io or discovery)", p, l.Serve)
		}
		for g, st := range l.ANAStates {
			if g == 0 || g > MaxANAGroups {
				return fmt.Errorf("%s.ana_states: group %d is out of range (use 1..%d)", p, g, MaxANAGroups)
			}
			if _, err := ParseANAState(st); err != nil {
				return fmt.Errorf("%s.ana_states[%d]: %v", p, g, err)
			}
		}
	}
	if err := validateDHCHAP(c.DHCHAP); err != nil {
		return err
	}
	nqns := map[string]bool{}
	for i := range c.Subsystems {
		s := &c.Subsystems[i]
		p := fmt.Sprintf("subsystems[%d]", i)
		if err := validateSubsystem(p, s, ids); err != nil {
			return err
		}
		if nqns[s.NQN] {
			return fmt.Errorf("%s.nqn: %q is used twice (give each subsystem its own NQN)", p, s.NQN)
		}
		nqns[s.NQN] = true
	}
	if c.IOQueues < 1 || c.IOQueues > 0xFFFE {
		return fmt.Errorf("io_queues: %d is out of range (use 1..65534)", c.IOQueues)
	}
	if c.QueueSize < 2 || c.QueueSize > 65536 {
		return fmt.Errorf("queue_size: %d is out of range (use 2..65536)", c.QueueSize)
	}
	icd, err := sizeField("in_capsule_data_size", c.InCapsuleDataSize)
	if err != nil {
		return err
	}
	if icd%16 != 0 || icd > 1<<20 {
		return fmt.Errorf("in_capsule_data_size: %s must be a multiple of 16 up to 1MiB (use e.g. 8KiB)", c.InCapsuleDataSize)
	}
	h2c, err := sizeField("max_h2c_data", c.MaxH2CData)
	if err != nil {
		return err
	}
	if h2c < tcpMinH2C || h2c%4 != 0 || h2c > 1<<30 {
		return fmt.Errorf("max_h2c_data: %s must be >= 4KiB and a multiple of 4 (use e.g. 128KiB)", c.MaxH2CData)
	}
	c2h, err := sizeField("c2h_data_size", c.C2HDataSize)
	if err != nil {
		return err
	}
	if c2h < 512 || c2h > 1<<30 {
		return fmt.Errorf("c2h_data_size: %s is out of range (use 512B..1GiB, e.g. 128KiB)", c.C2HDataSize)
	}
	mdts, err := sizeField("mdts", c.MDTS)
	if err != nil {
		return err
	}
	// Identify MDTS is log2 of the limit in units of 4 KiB (CAP.MPSMIN 0),
	// and MDTS 0 means "no limit": 8 KiB is the smallest limit a
	// controller can report. 4 KiB used to be reported as no limit at all.
	if mdts < 8192 || mdts&(mdts-1) != 0 || mdts > 1<<30 {
		return fmt.Errorf("mdts: %s must be a power of two from 8KiB to 1GiB (Identify MDTS cannot say 4KiB: 0 means no limit; use e.g. 1MiB)", c.MDTS)
	}
	if c.CPDA > 31 {
		return fmt.Errorf("cpda: %d is out of range (use 0..31)", c.CPDA)
	}
	if c.MaxHPDA > 31 {
		return fmt.Errorf("max_hpda: %d is out of range (use 0..31)", c.MaxHPDA)
	}
	if c.MinKATO < 0 || c.MaxKATO < 0 || (c.MaxKATO > 0 && c.MinKATO > c.MaxKATO) {
		return fmt.Errorf("min_kato/max_kato: %v/%v is not a range (use e.g. min_kato: 1s, max_kato: 2m)", c.MinKATO, c.MaxKATO)
	}
	if c.ICTimeout < 0 || c.IdleTimeout < 0 {
		return errors.New("ic_timeout/idle_timeout: negative (use e.g. 10s, or 0 to disable)")
	}
	if c.PollIdle < 0 {
		return errors.New("poll_idle: negative (use e.g. 1ms, or 0 for the default)")
	}
	if err := c.validatePeerBounds(); err != nil {
		return err
	}
	if err := validateQuirks(c.Quirks); err != nil {
		return err
	}
	switch c.Version {
	case "":
		c.Version = "2.0"
	case "1.4", "2.0":
	default:
		return fmt.Errorf("version: %q is not supported (use 1.4 or 2.0)", c.Version)
	}
	return nil
}

const tcpMinH2C = 4096

// validatePeerBounds checks the bounds on what a remote peer can make the
// target hold.
func (c *Config) validatePeerBounds() error {
	if c.MaxConnections < 0 || c.MaxConnectionsPerAddress < 0 || c.MaxAssociationsPerHost < 0 {
		return fmt.Errorf("max_connections/max_connections_per_address/max_associations_per_host: %d/%d/%d is negative (use e.g. 1024/128/64, or 0 for no bound)",
			c.MaxConnections, c.MaxConnectionsPerAddress, c.MaxAssociationsPerHost)
	}
	r2t, err := sizeField("r2t_buffer", c.R2TBuffer)
	if err != nil {
		return err
	}
	if r2t < 4096 || r2t > 1<<30 {
		return fmt.Errorf("r2t_buffer: %s is out of range (use 4KiB..1GiB, e.g. 2MiB)", c.R2TBuffer)
	}
	wb, err := sizeField("write_backlog", c.WriteBacklog)
	if err != nil {
		return err
	}
	if wb < 64<<10 || wb > 1<<30 {
		return fmt.Errorf("write_backlog: %s is out of range (use 64KiB..1GiB, e.g. 2MiB)", c.WriteBacklog)
	}
	if c.R2TTimeout < 0 || c.WriteTimeout < 0 || c.DiscoveryKATO < 0 {
		return errors.New("r2t_timeout/write_timeout/discovery_kato: negative (use e.g. 30s/30s/2m, or 0 to disable)")
	}
	if c.FatalCloseWait < 0 {
		return fmt.Errorf("fatal_close_wait: %v is negative (use e.g. 30s, or 0 to close right after the C2HTermReq)", c.FatalCloseWait)
	}
	return nil
}

func sizeField(path string, s Size) (uint64, error) {
	n, err := s.Bytes()
	if err != nil || s == "" {
		return 0, fmt.Errorf("%s: %q is not a size (use e.g. 64MiB)", path, string(s))
	}
	return n, nil
}

func validateSubsystem(p string, s *SubsystemConfig, ports map[uint16]bool) error {
	if !ValidNQN(s.NQN) {
		return fmt.Errorf("%s.nqn: %q is not an NQN (use e.g. nqn.2014-08.io.example:disk1)", p, s.NQN)
	}
	if s.NQN == nvme.DiscoveryNQN {
		return fmt.Errorf("%s.nqn: %q is the discovery NQN (pick another NQN)", p, s.NQN)
	}
	if len(s.Serial) > 20 {
		return fmt.Errorf("%s.serial: %q is longer than 20 characters (shorten it)", p, s.Serial)
	}
	if len(s.Model) > 40 {
		return fmt.Errorf("%s.model: %q is longer than 40 characters (shorten it)", p, s.Model)
	}
	if !s.AllowAnyHost && len(s.Hosts) == 0 {
		return fmt.Errorf("%s: no host may connect (set allow_any_host: true or list hosts)", p)
	}
	for j, h := range s.Hosts {
		if !ValidNQN(h) {
			return fmt.Errorf("%s.hosts[%d]: %q is not an NQN (use e.g. nqn.2014-08.org.nvmexpress:uuid:...)", p, j, h)
		}
	}
	for j, id := range s.Ports {
		if !ports[id] {
			return fmt.Errorf("%s.ports[%d]: no listener has port_id %d (use one of the listeners' port_id)", p, j, id)
		}
	}
	nsids := map[uint32]bool{}
	for j := range s.Namespaces {
		ns := &s.Namespaces[j]
		if err := ns.validate(fmt.Sprintf("%s.namespaces[%d]", p, j)); err != nil {
			return err
		}
		if ns.NSID != 0 {
			if nsids[ns.NSID] {
				return fmt.Errorf("%s.namespaces[%d].nsid: %d is used twice (give each namespace its own nsid)", p, j, ns.NSID)
			}
			nsids[ns.NSID] = true
		}
	}
	return nil
}

// MaxNSID is the largest namespace ID (Identify Controller NN).
const MaxNSID = 1024

func (ns *NamespaceConfig) validate(p string) error {
	if ns.NSID > MaxNSID {
		return fmt.Errorf("%s.nsid: %d is out of range (use 1..%d, or 0 for the next free)", p, ns.NSID, MaxNSID)
	}
	if ns.ANAGroup > MaxANAGroups {
		return fmt.Errorf("%s.ana_group: %d is out of range (use 1..%d, or 0 for 1)", p, ns.ANAGroup, MaxANAGroups)
	}
	switch ns.BlockSize {
	case 0:
		ns.BlockSize = 512
	case 512, 4096:
	default:
		return fmt.Errorf("%s.block_size: %d is not supported (use 512 or 4096)", p, ns.BlockSize)
	}
	n, err := ns.Size.Bytes()
	if err != nil {
		return fmt.Errorf("%s.size: %q is not a size (use e.g. 64MiB)", p, string(ns.Size))
	}
	switch ns.Backend {
	case BackendNull, BackendMem:
		if ns.Path != "" {
			return fmt.Errorf("%s.path: set for a %s backend (remove it or use backend: file)", p, ns.Backend)
		}
		if n == 0 {
			return fmt.Errorf("%s.size: missing (use e.g. size: 64MiB)", p)
		}
	case BackendFile:
		if ns.Path == "" {
			return fmt.Errorf("%s.path: missing for a file backend (use e.g. path: /var/tmp/ns1.img)", p)
		}
	case "":
		return fmt.Errorf("%s.backend: missing (use null, mem or file)", p)
	default:
		return fmt.Errorf("%s.backend: %q is not a backend (use null, mem or file)", p, ns.Backend)
	}
	if n%uint64(ns.BlockSize) != 0 {
		return fmt.Errorf("%s.size: %s is not a multiple of the block size %d (round it)", p, ns.Size, ns.BlockSize)
	}
	return nil
}
