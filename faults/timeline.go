package faults

import (
	"context"
	"time"
)

// Step is one action of a timeline, At after the timeline starts.
type Step struct {
	At   time.Duration
	Name string
	Do   func()
}

// Run performs steps in order of their At (which must not decrease), each
// at its time, calling onStep (if not nil) as each starts. It returns
// early with ctx's error.
func Run(ctx context.Context, steps []Step, onStep func(name string, at time.Time)) error {
	start := time.Now()
	for _, s := range steps {
		if w := time.Until(start.Add(s.At)); w > 0 {
			t := time.NewTimer(w)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if onStep != nil {
			onStep(s.Name, time.Now())
		}
		if s.Do != nil {
			s.Do()
		}
	}
	return nil
}

// FlapSteps takes the path down and up n times, starting at start: down
// for down, then up for up.
func (p *Proxy) FlapSteps(start, down, up time.Duration, n int) []Step {
	var l []Step
	at := start
	for range n {
		l = append(l, Step{At: at, Name: "path down", Do: func() { p.SetDown(true) }},
			Step{At: at + down, Name: "path up", Do: func() { p.SetDown(false) }})
		at += down + up
	}
	return l
}

// Flap runs FlapSteps(0, down, up, n) now, returning when the path is up
// again (or ctx ends; the path is then brought up).
func (p *Proxy) Flap(ctx context.Context, down, up time.Duration, n int) error {
	err := Run(ctx, p.FlapSteps(0, down, up, n), nil)
	if err != nil {
		p.SetDown(false)
	}
	return err
}
