package target

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tg, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	ns := tg.subsys[0].table().get(1)
	if mb, ok := ns.b.(*MemBackend); !ok || mb.Size() != 256<<20 || mb.Allocated() != 0 {
		t.Fatalf("default namespace %T", ns.b)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
listeners:
  - address: 0.0.0.0:4420
  - address: 0.0.0.0:8009
    serve: discovery
subsystems:
  - nqn: nqn.2014-08.io.example:disk1
    hosts: [nqn.2014-08.io.example:host]
    ports: [1]
    namespaces:
      - {backend: null, size: 1TiB, block_size: 4096}
      - {nsid: 7, backend: mem, size: 64MiB}
queue_size: 256
capture: /tmp/traces
max_kato: 2m
mdts: 512KiB
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.QueueSize != 256 || c.Listeners[1].PortID != 2 || c.Subsystems[0].Namespaces[1].BlockSize != 512 ||
		c.MaxKATO.Minutes() != 2 || c.MDTS != "512KiB" || c.Capture != "/tmp/traces" || !c.HeaderDigest || c.IOQueues != 8 {
		t.Fatalf("%+v", c)
	}
}

// TestPeerBoundKeys: the bounds on what a remote peer can make the target
// hold have defaults, and parse from YAML.
func TestPeerBoundKeys(t *testing.T) {
	d := DefaultConfig()
	if d.MaxConnections != 1024 || d.MaxConnectionsPerAddress != 128 || d.MaxAssociationsPerHost != 64 ||
		d.R2TBuffer != "2MiB" || d.R2TTimeout != 30*time.Second || d.WriteBacklog != "2MiB" ||
		d.WriteTimeout != 30*time.Second || d.DiscoveryKATO != 2*time.Minute {
		t.Fatalf("defaults %+v", d)
	}
	c, err := ParseConfig([]byte(`
listeners: [{address: "127.0.0.1:4420"}]
max_connections: 10
max_connections_per_address: 0
max_associations_per_host: 3
r2t_buffer: 8MiB
r2t_timeout: 5s
write_backlog: 512KiB
write_timeout: 0s
discovery_kato: 30s
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 10 || c.MaxConnectionsPerAddress != 0 || c.MaxAssociationsPerHost != 3 ||
		c.R2TBuffer != "8MiB" || c.R2TTimeout != 5*time.Second || c.WriteBacklog != "512KiB" ||
		c.WriteTimeout != 0 || c.DiscoveryKATO != 30*time.Second {
		t.Fatalf("%+v", c)
	}
	tg, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if tg.r2tBuffer != 8<<20 || tg.writeBacklog != 512<<10 {
		t.Fatalf("derived %d %d", tg.r2tBuffer, tg.writeBacklog)
	}
}

func TestConfigErrors(t *testing.T) {
	base := `listeners: [{address: "127.0.0.1:4420"}]
`
	sub := func(ns string) string {
		return base + "subsystems:\n  - nqn: nqn.2014-08.io.example:d\n    allow_any_host: true\n    namespaces:\n" + ns
	}
	for _, tc := range []struct{ yaml, want string }{
		{"bogus: 1\n" + base, `line 1: unknown key "bogus"`},
		{"listeners: []\n", "listeners: none configured"},
		{`listeners: [{address: "nope"}]`, `listeners[0].address: "nope" is not host:port`},
		{base + "mdts: 3000\n", "mdts: 3000 must be a power of two"},
		{base + "mdts: 4KiB\n", "mdts: 4KiB must be a power of two from 8KiB"},
		{base + "max_h2c_data: lots\n", `max_h2c_data: "lots" is not a size (use e.g. 64MiB)`},
		{sub("      - {backend: mem, size: 1MiB}\n      - {backend: mem, size: 12XB}\n"),
			`subsystems[0].namespaces[1].size: "12XB" is not a size (use e.g. 64MiB)`},
		{sub("      - {backend: disk, size: 1MiB}\n"), `subsystems[0].namespaces[0].backend: "disk" is not a backend`},
		{sub("      - {backend: file}\n"), "subsystems[0].namespaces[0].path: missing"},
		{sub("      - {backend: mem, size: 1MiB, block_size: 1000}\n"), "block_size: 1000 is not supported (use 512 or 4096)"},
		{sub("      - {backend: mem, size: 1000}\n"), "not a multiple of the block size"},
		{base + "subsystems: [{nqn: bad, allow_any_host: true}]\n", `subsystems[0].nqn: "bad" is not an NQN`},
		{base + "subsystems: [{nqn: nqn.2014-08.io.example:d}]\n", "no host may connect"},
		{base + "subsystems: [{nqn: nqn.2014-08.io.example:d, allow_any_host: true, ports: [9]}]\n", "no listener has port_id 9"},
		{base + "version: \"1.3\"\n", `version: "1.3" is not supported`},
		{base + "capture: /dev/null\n", `capture: "/dev/null" is not a directory`},
		{base + "max_connections: -1\n", "max_connections/max_connections_per_address/max_associations_per_host: -1/128/64 is negative"},
		{base + "max_associations_per_host: -2\n", "-2 is negative (use e.g. 1024/128/64, or 0 for no bound)"},
		{base + "r2t_buffer: 1KiB\n", "r2t_buffer: 1KiB is out of range (use 4KiB..1GiB, e.g. 2MiB)"},
		{base + "r2t_buffer: lots\n", `r2t_buffer: "lots" is not a size`},
		{base + "write_backlog: 2GiB\n", "write_backlog: 2GiB is out of range (use 64KiB..1GiB, e.g. 2MiB)"},
		{base + "write_timeout: -1s\n", "r2t_timeout/write_timeout/discovery_kato: negative"},
		{base + "discovery_kato: -1m\n", "r2t_timeout/write_timeout/discovery_kato: negative"},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("multi-line error %q", err)
		}
	}
}

// TestQuirkAndFatalWaitKeys: fatal_close_wait defaults to the 30 seconds
// of NVMe/TCP 1.0 3.5.1, quirks parse by name, and a bad value of either
// is a one-line error (an unknown quirk's lists the known ones).
func TestQuirkAndFatalWaitKeys(t *testing.T) {
	if d := DefaultConfig(); d.FatalCloseWait != 30*time.Second || len(d.Quirks) != 0 {
		t.Fatalf("defaults: fatal_close_wait %v, quirks %v", d.FatalCloseWait, d.Quirks)
	}
	base := "listeners: [{address: 127.0.0.1:0}]\n"
	c, err := ParseConfig([]byte(base + "fatal_close_wait: 5s\nquirks: [no-termreq, kas-10s]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.FatalCloseWait != 5*time.Second || len(c.Quirks) != 2 {
		t.Fatalf("%v %v", c.FatalCloseWait, c.Quirks)
	}
	for in, want := range map[string]string{
		"fatal_close_wait: -1s\n":       "fatal_close_wait: -1s is negative",
		"quirks: [kas-10s, frobnicate]": `quirks[1]: "frobnicate" is not a quirk (use one of no-termreq, `,
	} {
		_, err := ParseConfig([]byte(base + in))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want %q in one line", in, err, want)
		}
	}
}

// TestQuirkTable: every quirk has a unique name, a kind and a description,
// and sets something.
func TestQuirkTable(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Quirks() {
		if q.Name == "" || seen[q.Name] || q.Does == "" || (q.Kind != QuirkAllowed && q.Kind != QuirkDeviation) {
			t.Errorf("quirk %+v", q)
		}
		seen[q.Name] = true
		if newQuirkSet([]string{q.Name}) == (quirkSet{}) {
			t.Errorf("quirk %s sets nothing", q.Name)
		}
	}
}

// TestConfigErrorsSayWhere: a YAML syntax error names the line that is
// wrong (not the start of its block), and an unknown key gets its line and
// a "did you mean", without Go type names (review item 17).
func TestConfigErrorsSayWhere(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"listeners:\n  - address: 127.0.0.1:4420\n    port_id: 1\n   serve: io\n", []string{"line 4:", "serve: io"}},
		{"listeners:\n  - address: 127.0.0.1:4420\n    portid: 1\n", []string{`line 3: unknown key "portid" (did you mean port_id?)`}},
		{"listeners:\n  - address: 127.0.0.1:4420\nsubsystems:\n  - nqn: nqn.2014-08.io.nvmftest:x\n    alow_any_host: true\n    namespaces:\n      - {backend: mem, size: 1MiB, blocksize: 512}\n",
			[]string{`line 5: unknown key "alow_any_host" (did you mean allow_any_host?)`, `line 7: unknown key "blocksize" (did you mean block_size?)`}},
		{"listeners:\n  - address: 127.0.0.1:4420\n    frobnicate: 1\n", []string{`line 3: unknown key "frobnicate" (known here: address, port_id, serve, ana_states)`}},
	} {
		_, err := ParseConfig([]byte(tc.yaml))
		if err == nil {
			t.Errorf("%q: no error", tc.yaml)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", tc.yaml, err, w)
			}
		}
		if strings.Contains(err.Error(), "target.") || strings.Contains(err.Error(), ";  ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %q shows Go types or odd separators", tc.yaml, err)
		}
	}
}
