package fuzz

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDdmin: delta debugging finds the two items a failure needs among
// forty, and only them.
func TestDdmin(t *testing.T) {
	runs := 0
	got := ddmin(40, func(idx []int) bool {
		runs++
		return slices.Contains(idx, 3) && slices.Contains(idx, 31)
	})
	if !slices.Equal(got, []int{3, 31}) {
		t.Errorf("ddmin kept %v, want [3 31]", got)
	}
	t.Logf("%d tests", runs)
}

// TestMinimizerSynthetic minimizes against a synthetic oracle that fails
// when an ICReq precedes, on the same connection, a CapsuleCmd whose PDO
// is below 72: what is left is those two PDUs, each cut to the bytes the
// oracle reads, within the budget.
func TestMinimizerSynthetic(t *testing.T) {
	seeds, err := BuiltinSeeds(testID)
	if err != nil {
		t.Fatal(err)
	}
	c := seeds[0].Clone()
	// The seed's discovery Connect (step 2) gets PDO 13.
	k := slices.IndexFunc(c.Steps, func(s Step) bool { return s.Type() == 4 })
	c.Steps[k].Bytes[3] = 13
	oracle := func(c *Case) bool {
		ic := map[int]bool{}
		for _, s := range c.Steps {
			if len(s.Bytes) >= 1 && s.Bytes[0] == 0 {
				ic[s.Conn] = true
			}
			if len(s.Bytes) >= 4 && s.Bytes[0] == 4 && s.Bytes[3] < 72 && ic[s.Conn] {
				return true
			}
		}
		return false
	}
	if !oracle(c) {
		t.Fatal("the oracle does not fail the start case")
	}
	m := &Minimizer{Budget: 300, Test: func(_ context.Context, c *Case) bool { return oracle(c) }}
	min := m.Minimize(context.Background(), c)
	if !oracle(min) {
		t.Fatal("the minimized case passes the oracle")
	}
	if len(min.Steps) != 2 || min.Steps[0].Type() != 0 || min.Steps[1].Type() != 4 {
		t.Fatalf("minimized to %d steps:\n%s", len(min.Steps), HexDump(min, 16))
	}
	if n := len(min.Steps[0].Bytes) + len(min.Steps[1].Bytes); n > 5 {
		t.Errorf("minimized to %d bytes, want 5 (1 of ICReq, 4 of CapsuleCmd):\n%s", n, HexDump(min, 0))
	}
	if m.Runs > m.Budget {
		t.Errorf("%d runs, budget %d", m.Runs, m.Budget)
	}
	t.Logf("%d steps/%d bytes -> %d steps/%d bytes in %d runs", len(c.Steps), c.Size(), len(min.Steps), min.Size(), m.Runs)

	// A budget of 5 runs stops early, with a case that still fails.
	m = &Minimizer{Budget: 5, Test: func(_ context.Context, c *Case) bool { return oracle(c) }}
	if small := m.Minimize(context.Background(), c); m.Runs != 5 || !oracle(small) {
		t.Errorf("budget 5: %d runs, oracle fails %v", m.Runs, oracle(small))
	}
}

// TestAnomalies names what is malformed, PDU by PDU, and nothing in a
// well-formed exchange.
func TestAnomalies(t *testing.T) {
	seeds, _ := BuiltinSeeds(testID)
	if a := Anomalies(seeds[0]); len(a) != 0 {
		t.Errorf("a Linux capture has anomalies %q", a)
	}
	for i := range uint64(50) {
		if c := grammarCase(rand.New(rand.NewPCG(i, 1)), testID); len(Anomalies(c)) != 0 {
			t.Errorf("grammar case %d has anomalies %q", i, Anomalies(c))
		}
	}
	c := seeds[0].Clone()
	k := slices.IndexFunc(c.Steps, func(s Step) bool { return s.Type() == 4 })
	c.Steps[k].Bytes[3] = 36
	c.Steps[k].Bytes = c.Steps[k].Bytes[:69]
	c.Steps = append([]Step{{Conn: 9, Bytes: c.Steps[k].Bytes}}, c.Steps...)
	got := Anomalies(c)
	want := []string{"CapsuleCmd(Connect) before ICReq", "CapsuleCmd(Connect).PLEN", "CapsuleCmd(Connect).PDO inside the header"}
	if !slices.Equal(got, want) {
		t.Errorf("anomalies %q, want %q", got, want)
	}
}
