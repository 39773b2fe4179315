package failover

import (
	"context"
	"testing"
)

func TestUnknownScenario(t *testing.T) {
	if _, err := Run(context.Background(), Config{Scenario: "nope"}); err == nil {
		t.Fatal("unknown scenario ran")
	}
	if _, err := Run(context.Background(), Config{}); err == nil {
		t.Fatal("no scenario ran")
	}
}

func TestParseAction(t *testing.T) {
	a, err := ParseAction([]string{"set-ana-state", "port=1", "state=inaccessible"})
	if err != nil || a.Verb != "set-ana-state" || a.Args["port"] != "1" || a.Args["state"] != "inaccessible" {
		t.Fatalf("%+v %v", a, err)
	}
	if _, err := ParseAction([]string{"x", "=1"}); err == nil {
		t.Fatal("empty key accepted")
	}
	if _, err := ParseAction(nil); err == nil {
		t.Fatal("no verb accepted")
	}
}
