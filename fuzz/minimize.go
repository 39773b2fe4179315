package fuzz

import (
	"context"
	"slices"
)

// Minimizer shrinks a case that makes an oracle fail to one that still
// does: delta debugging (Zeller's ddmin) over the steps, then for each
// step the shortest prefix and ddmin over its bytes. Every test re-runs
// the case against the target, so Budget bounds how many runs it may
// spend; what it has when the budget or ctx runs out is its result.
type Minimizer struct {
	// Test reports whether the case still makes the oracle fail.
	Test   func(ctx context.Context, c *Case) bool
	Budget int
	// Runs counts the tests made.
	Runs int
}

func (m *Minimizer) test(ctx context.Context, c *Case) bool {
	if m.Runs >= m.Budget || ctx.Err() != nil {
		return false
	}
	m.Runs++
	return m.Test(ctx, c)
}

// Minimize returns the smallest case it found that still fails, starting
// from c (which is assumed to fail).
func (m *Minimizer) Minimize(ctx context.Context, c *Case) *Case {
	best := c.Clone()
	// Steps.
	keep := ddmin(len(best.Steps), func(idx []int) bool {
		t := best.Clone()
		t.Steps = pick(best.Steps, idx)
		t.renumber()
		return m.test(ctx, t)
	})
	if len(keep) < len(best.Steps) {
		best.Steps = pick(best.Steps, keep)
		best.renumber()
	}
	// Bytes, the largest step first: the shortest prefix that still
	// fails (a binary search), then ddmin over what remains.
	order := make([]int, len(best.Steps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return len(best.Steps[b].Bytes) - len(best.Steps[a].Bytes) })
	for _, i := range order {
		with := func(b []byte) *Case {
			t := best.Clone()
			t.Steps[i].Bytes = b
			if t.Steps[i].Split >= len(b) {
				t.Steps[i].Split = 0
			}
			return t
		}
		orig := best.Steps[i].Bytes
		lo, hi := 1, len(orig) // hi fails; find the least length that fails
		for lo < hi && m.Runs < m.Budget && ctx.Err() == nil {
			mid := (lo + hi) / 2
			if m.test(ctx, with(orig[:mid])) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		cur := slices.Clone(orig[:hi])
		if m.Runs < m.Budget && ctx.Err() == nil {
			keep := ddmin(len(cur), func(idx []int) bool {
				return m.test(ctx, with(pickBytes(cur, idx)))
			})
			cur = pickBytes(cur, keep)
		}
		best = with(cur)
	}
	return best
}

func pick(steps []Step, idx []int) []Step {
	out := make([]Step, len(idx))
	for k, i := range idx {
		out[k] = steps[i]
		out[k].Bytes = slices.Clone(steps[i].Bytes)
	}
	return out
}

func pickBytes(b []byte, idx []int) []byte {
	out := make([]byte, len(idx))
	for k, i := range idx {
		out[k] = b[i]
	}
	return out
}

// ddmin is delta debugging over n items: it returns the indices of a
// 1-minimal subset (as far as test lets it get) for which test holds,
// test being assumed to hold for all n.
func ddmin(n int, test func(idx []int) bool) []int {
	cur := make([]int, n)
	for i := range cur {
		cur[i] = i
	}
	parts := 2
	for len(cur) >= 2 {
		chunks := split(cur, parts)
		reduced := false
		// A chunk alone.
		for _, ch := range chunks {
			if test(ch) {
				cur, parts, reduced = ch, 2, true
				break
			}
		}
		if !reduced {
			// Everything but a chunk.
			for k := range chunks {
				var rest []int
				for j, ch := range chunks {
					if j != k {
						rest = append(rest, ch...)
					}
				}
				if test(rest) {
					cur, parts, reduced = rest, max(parts-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if parts >= len(cur) {
				break
			}
			parts = min(2*parts, len(cur))
		}
	}
	return cur
}

func split(xs []int, n int) [][]int {
	var out [][]int
	start := 0
	for k := range n {
		end := start + (len(xs)-start)/(n-k)
		if end > start {
			out = append(out, xs[start:end])
		}
		start = end
	}
	return out
}
