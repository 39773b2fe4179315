package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestDemoRunsEndToEnd(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := Run(ctx, &out, Options{LoadDuration: 300 * time.Millisecond, Depth: 8}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"[1/6] reference target", "[2/6] discovery log", "[3/6] connected",
		"header digest true, data digest true", "[4/6] identify", "[5/6] write and verify", "read back identical",
		"[6/6] load", "IOPS", "demo passed"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}
