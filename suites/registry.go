package suites

import (
	. "github.com/onsi/ginkgo/v2" //nolint:revive
)

// Requirements are declared by Check inside Describe bodies, which Ginkgo
// runs only when it builds the spec tree. loadRegistry builds a preview of
// the tree (Ginkgo's PreviewSpecs: nothing runs) so that Requirements,
// ParseProfile and `nvmftest conform --list` know every requirement before
// any run. The tree is built again by RunSpecs; regGen tells the builds
// apart so only a real duplicate within one build is an error.
var (
	regSeen = map[string]int{}
	regGen  int
)

func loadRegistry() {
	regMu.Lock()
	built := len(registry) > 0
	regMu.Unlock()
	if built {
		return // by an earlier preview, or by a run (after which no preview is possible)
	}
	PreviewSpecs("nvmftest conformance (requirements)")
}

// nextBuild starts a new tree build (Run calls it before RunSpecs).
func nextBuild() {
	regMu.Lock()
	regGen++
	regMu.Unlock()
}
