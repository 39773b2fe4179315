//go:build linux

package soak

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// report collects what the actors did (counts) and what went wrong
// (violations), grouped so that a failure reads as a short list.
type report struct {
	start time.Time

	mu     sync.Mutex
	counts map[string]int64
	viol   map[string]*violation
}

// violation is one kind of failure an actor saw, with the first few
// occurrences in detail.
type violation struct {
	actor, what string
	n           int
	first       time.Duration
	details     []string
}

const keepDetails = 5

func newReport() *report {
	return &report{start: time.Now(), counts: map[string]int64{}, viol: map[string]*violation{}}
}

// add adds n to the counter key ("actor/what").
func (r *report) add(key string, n int64) {
	r.mu.Lock()
	r.counts[key] += n
	r.mu.Unlock()
}

// sum adds every counter whose key ends in suffix.
func (r *report) sum(suffix string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for k, v := range r.counts {
		if strings.HasSuffix(k, suffix) {
			n += v
		}
	}
	return n
}

// violate records a failure: what is the kind (one line, no variable
// parts), detail the particulars of this occurrence.
func (r *report) violate(actor, what, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := actor + "\x00" + what
	v := r.viol[k]
	if v == nil {
		v = &violation{actor: actor, what: what, first: time.Since(r.start)}
		r.viol[k] = v
	}
	v.n++
	if len(v.details) < keepDetails {
		v.details = append(v.details, fmt.Sprintf("t=%.1fs %s", time.Since(r.start).Seconds(), detail))
	}
}

func (r *report) violations() []*violation {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := slices.Collect(maps.Values(r.viol))
	slices.SortFunc(l, func(a, b *violation) int { return int(a.first - b.first) })
	return l
}

func (r *report) violationCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.viol {
		n += v.n
	}
	return n
}

// table formats the counters, one actor per line.
func (r *report) table() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	by := map[string][]string{}
	for _, k := range slices.Sorted(maps.Keys(r.counts)) {
		a, what, _ := strings.Cut(k, "/")
		by[a] = append(by[a], fmt.Sprintf("%s=%d", what, r.counts[k]))
	}
	var b strings.Builder
	for _, a := range slices.Sorted(maps.Keys(by)) {
		fmt.Fprintf(&b, "  %-16s %s\n", a, strings.Join(by[a], " "))
	}
	return b.String()
}

func (v *violation) String() string {
	return fmt.Sprintf("[%s] %s: %d time(s), first at t=%.1fs\n      %s", v.actor, v.what, v.n, v.first.Seconds(),
		strings.Join(v.details, "\n      "))
}

// logTap is the target's logger: it counts messages (the target has no
// other introspection: "controller created" less "association ended" is
// the number of live controllers) and keeps the first error records.
type logTap struct {
	mu     sync.Mutex
	counts map[string]int64
	errors []string
}

func newLogTap() *logTap { return &logTap{counts: map[string]int64{}} }

func (l *logTap) Enabled(context.Context, slog.Level) bool { return true }

func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[r.Message]++
	if r.Level >= slog.LevelError && len(l.errors) < 10 {
		var b strings.Builder
		fmt.Fprintf(&b, "t=%s %s", r.Time.Format("15:04:05.000"), r.Message)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		l.errors = append(l.errors, b.String())
	}
	return nil
}

func (l *logTap) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logTap) WithGroup(string) slog.Handler      { return l }

func (l *logTap) count(msg string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[msg]
}

// Messages of the target's log the soak counts.
const (
	msgCtrlCreated = "controller created"
	msgCtrlEnded   = "association ended"
	msgFatal       = "fatal transport error"
	msgHostTerm    = "host terminated the connection"
	msgKATO        = "keep alive timeout"
)

// liveControllers is the target's live controller count as its log tells
// it.
func (l *logTap) liveControllers() int64 { return l.count(msgCtrlCreated) - l.count(msgCtrlEnded) }

func (l *logTap) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l.counts)) {
		parts = append(parts, fmt.Sprintf("%q=%d", k, l.counts[k]))
	}
	s := strings.Join(parts, " ")
	if len(l.errors) > 0 {
		s += "\n  first errors:\n    " + strings.Join(l.errors, "\n    ")
	}
	return s
}
