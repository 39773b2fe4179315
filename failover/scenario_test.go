package failover

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

func runScenario(t *testing.T, name string) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Scenario: name, Before: 500 * time.Millisecond, Fault: 2 * time.Second, After: 1500 * time.Millisecond,
		Log: func(s string) { t.Log(s) }}
	cfg.Host.KATO = 500 * time.Millisecond
	if os.Getenv("DBG") != "" {
		cfg.Host.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if name == KeepAlive {
		cfg.Fault = 3 * time.Second
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteText(&b, rep)
	t.Log("\n" + b.String())
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Pass || rep.VerifyErrors != 0 || rep.Failed != 0 {
		t.Fatalf("%s: %s", name, rep.Reason)
	}
	if rep.IOs == 0 || len(rep.Samples) == 0 || len(rep.Events) < 3 {
		t.Fatalf("%s: empty report %+v", name, rep)
	}
	return rep
}

func TestScenarioPathDown(t *testing.T) {
	rep := runScenario(t, PathDown)
	if rep.Retried == 0 {
		t.Log("no I/O needed a retry (path went down between I/Os)")
	}
}

func TestScenarioBlackhole(t *testing.T) {
	rep := runScenario(t, Blackhole)
	if rep.LongestStall == 0 {
		t.Error("a blackhole stalls the I/O on it until a timeout")
	}
}

func TestScenarioANATransition(t *testing.T) { runScenario(t, ANATransition) }
func TestScenarioFlap(t *testing.T)          { runScenario(t, Flap) }
func TestScenarioKeepAlive(t *testing.T)     { runScenario(t, KeepAlive) }
func TestScenarioDigest(t *testing.T)        { runScenario(t, Digest) }
func TestScenarioRestart(t *testing.T)       { runScenario(t, Restart) }

func TestUnknownScenario(t *testing.T) {
	if _, err := Run(context.Background(), Config{Scenario: "nope"}); err == nil {
		t.Fatal("unknown scenario ran")
	}
}
