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
