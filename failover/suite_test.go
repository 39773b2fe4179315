package failover_test

import (
	"context"
	"encoding/json"
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
		})
	}
})
