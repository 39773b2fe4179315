package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestFailoverCmd(t *testing.T) {
	js := filepath.Join(t.TempDir(), "r.json")
	var out, errb bytes.Buffer
	code := run([]string{"failover", "--scenario", "path-down", "--before", "300ms", "--fault", "1s", "--after", "1s", "--json", js}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "PASS") || !strings.Contains(out.String(), "path1") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run([]string{"failover", "--scenario", "ana-transition", "--before", "300ms", "--fault", "1s", "--after", "1s", "-o", "json"}, nil, &out, &errb)
	var reps []map[string]any
	if code != 0 || json.Unmarshal(out.Bytes(), &reps) != nil || len(reps) != 1 || reps[0]["pass"] != true {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	for _, args := range [][]string{{"failover"}, {"failover", "--scenario", "nope"}, {"failover", "--scenario", "path-down", "--path", "x:1"},
		{"failover", "--scenario", "path-down", "-a", "127.0.0.1", "-n", "nqn.2014-08.io.x:y"}} {
		if code := run(args, nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
