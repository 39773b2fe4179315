package failover_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/nvmftest/nvmftest/failover"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive
)

// TestFailoverSuite runs every scenario against the reference target as a
// Ginkgo suite (label "failover"): `go test ./failover`.
func TestFailoverSuite(t *testing.T) {
	RegisterFailHandler(Fail)
	// The suites package (a dependency) registers the conformance specs
	// too: run only the failover ones unless asked otherwise.
	sc, rc := GinkgoConfiguration()
	if sc.LabelFilter == "" {
		sc.LabelFilter = "failover"
	}
	RunSpecs(t, "nvmftest failover", sc, rc)
}

var _ = Describe("failover scenarios against the reference target", Label("failover"), func() {
	for _, name := range failover.Scenarios {
		It(name+": verified I/O moves to the other path and back, nothing fails, nothing mismatches", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cfg := failover.Config{Scenario: name, Before: 500 * time.Millisecond, Fault: 2 * time.Second, After: 1500 * time.Millisecond,
				Log: func(s string) { GinkgoWriter.Println(s) }}
			cfg.Host.KATO = 500 * time.Millisecond
			if name == failover.GhostWrite {
				// Held 750 ms, timed out at 250 ms: a noisy machine does not
				// time out the healthy path too.
				cfg.Host.KATO = time.Second
			}
			if os.Getenv("NVMFTEST_FAILOVER_DEBUG") != "" {
				cfg.Host.Logger = slog.New(slog.NewTextHandler(GinkgoWriter, nil))
			}
			rep, err := failover.Run(ctx, cfg)
			Expect(err).NotTo(HaveOccurred())
			var b strings.Builder
			failover.WriteText(&b, rep)
			GinkgoWriter.Println(b.String())
			_, err = json.Marshal(rep)
			Expect(err).NotTo(HaveOccurred())
			Expect(rep.VerifyErrors).To(BeZero(), "verify mismatches")
			Expect(rep.Failed).To(BeZero(), "I/Os failed to the application")
			Expect(rep.Pass).To(BeTrue(), rep.Reason)
			Expect(rep.IOs).To(BeNumerically(">", 0))
			Expect(rep.Samples).NotTo(BeEmpty())
			Expect(len(rep.Events)).To(BeNumerically(">=", 3))
			if name == failover.Blackhole || name == failover.KeepAlive {
				Expect(rep.LongestStall).To(BeNumerically(">", 0), "a blackhole stalls the I/O on it until a timeout")
			}
			if name == failover.GhostWrite {
				Expect(rep.Held).To(BeNumerically(">", 0), "writes outstanding on path 1 waited for its controller to quiesce")
			}
		})
	}

	// What ghost-write guards against: a host that retries a timed-out
	// write on the other path at once (as hosts without Command Quiesce
	// Time handling do) has newer data overwritten by the original when it
	// arrives late, and the verify catches it.
	It("ghost-write without the quiesce wait: the stale write overwrites newer data and verify fails", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cfg := failover.Config{Scenario: failover.GhostWrite, Before: 500 * time.Millisecond, Fault: 2 * time.Second, After: 1500 * time.Millisecond,
			Log: func(s string) { GinkgoWriter.Println(s) }}
		cfg.Host.KATO = time.Second
		cfg.Host.UnsafeRetryWithoutQuiesce = true
		rep, err := failover.Run(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		var b strings.Builder
		failover.WriteText(&b, rep)
		GinkgoWriter.Println(b.String())
		Expect(rep.Pass).To(BeFalse())
		Expect(rep.VerifyErrors).To(BeNumerically(">", 0), rep.Reason)
		Expect(rep.Err).To(ContainSubstring("stale data"))
		Expect(rep.Held).To(BeZero())
	})

	// The host tries a lost path again only when its backoff says: with
	// reconnect delays of 300 ms doubling to 2.4 s, path 1 (down at about
	// 0.5 s) is tried at +0.3, +0.9, +2.1 and +4.5 s, so an after phase of
	// 500 ms following a 2.2 s fault ended (at 3.2 s) before the host
	// looked again, and the target was blamed: "I/O did not move back to
	// the path after it returned". (KATO 500 ms: writes held for path 1's
	// quiesce, 3 KATT + CQT, are done before then and do not stretch the
	// load.) The after phase now waits for the longest delay plus a
	// margin, and the timeline says so.
	It("path-down with an after phase shorter than the host's reconnect backoff: the phase is lengthened and the target passes", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cfg := failover.Config{Scenario: failover.PathDown, Before: 500 * time.Millisecond, Fault: 2200 * time.Millisecond, After: 500 * time.Millisecond,
			Log: func(s string) { GinkgoWriter.Println(s) }}
		cfg.Host.KATO = 500 * time.Millisecond
		cfg.Host.ReconnectDelay, cfg.Host.ReconnectDelayMax = 300*time.Millisecond, 2400*time.Millisecond
		rep, err := failover.Run(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		var b strings.Builder
		failover.WriteText(&b, rep)
		GinkgoWriter.Println(b.String())
		Expect(rep.Pass).To(BeTrue(), rep.Reason)
		Expect(rep.MovedBack).To(BeTrue())
		var notes []string
		for _, e := range rep.Events {
			if strings.Contains(e.What, "after phase lengthened") {
				notes = append(notes, e.What)
			}
		}
		Expect(notes).To(ConsistOf(ContainSubstring("from 500ms to 3.4s")), "the timeline says the after phase was lengthened, and why")
	})

	It("refuses a reconnect backoff no after phase can wait for", func() {
		cfg := failover.Config{Scenario: failover.PathDown}
		cfg.Host.ReconnectDelay = time.Hour
		_, err := failover.Run(context.Background(), cfg)
		var ce *failover.ConfigError
		Expect(errors.As(err, &ce)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("lower the reconnect delay"))
	})
})
