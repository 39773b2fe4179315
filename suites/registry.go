package suites

import (
	"fmt"
	"io"
	"text/tabwriter"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/types"
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
	rep := PreviewSpecs("nvmftest conformance (requirements)")
	labels := make([][]string, 0, len(rep.SpecReports))
	for _, sr := range rep.SpecReports {
		labels = append(labels, sr.Labels())
	}
	regMu.Lock()
	specLabels = labels
	regMu.Unlock()
}

// specLabels are the labels of every check (area, sub-area, ID, level) as
// the preview saw them; nil when the tree was built by a run.
var specLabels [][]string

// matchesNone reports whether filter selects no check of the preview;
// false when it cannot tell.
func matchesNone(filter types.LabelFilter) bool {
	loadRegistry()
	regMu.Lock()
	defer regMu.Unlock()
	if len(specLabels) == 0 {
		return false
	}
	for _, l := range specLabels {
		if filter(l) {
			return false
		}
	}
	return true
}

// nextBuild starts a new tree build (Run calls it before RunSpecs).
func nextBuild() {
	regMu.Lock()
	regGen++
	regMu.Unlock()
}

// WriteRequirements writes every requirement as the traceability table a
// lab reviewer asks for: ID, level, the spec's keyword, whom it binds,
// the section, the requirement and the governing words. markdown chooses
// a Markdown table over aligned text.
func WriteRequirements(w io.Writer, markdown bool) {
	reqs := Requirements()
	if markdown {
		fmt.Fprintf(w, "# nvmftest conformance requirements\n\n%d checks. Each level follows the specification's keyword: shall, and rules the text states as fact (indicative), are mandatory; should is recommended; may is optional.\n\n", len(reqs))
		fmt.Fprintln(w, "| ID | Level | Keyword | Binds | Section | Requirement | Text |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, r := range reqs {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.ID, r.Level, orDash(string(r.Keyword)), orDash(string(r.Binds)), mdCell(r.Section), mdCell(r.Title), mdCell(r.Text))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLEVEL\tKEYWORD\tBINDS\tSECTION\tREQUIREMENT")
	for _, r := range reqs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Level, orDash(string(r.Keyword)), orDash(string(r.Binds)), r.Section, r.Title)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d requirements\n", len(reqs))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
