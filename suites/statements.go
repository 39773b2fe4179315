package suites

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
)

// statementsTSV is the statement inventory: every normative statement of
// NVMe/TCP 1.0 and of the Fabrics parts of NVMe Base 2.2, with the
// coverage judgement the inventory asserts. Its header documents the ID
// scheme and the columns.
//
//go:embed statements.tsv
var statementsTSV string

// StatementStatus is the coverage judgement the inventory records for a
// statement; the matrix derives the final coverage from it and from the
// checks that name the statement.
type StatementStatus string

// Inventory statuses (see the header of statements.tsv).
const (
	StCovered StatementStatus = "covered" // some check must name it
	StPartly  StatementStatus = "partly"  // PartialBy drive part of it
	StOpen    StatementStatus = "open"    // not covered yet
	StTLS     StatementStatus = "tls"     // TLS: nvmftest has none
	StNT      StatementStatus = "nt"      // not observable by a host-side test
	StNA      StatementStatus = "na"      // cannot arise over NVMe/TCP
	StHost    StatementStatus = "host"    // binds only the host (issue 16)
	StMeta    StatementStatus = "meta"    // binds no implementation
)

// Statement is one normative statement of the inventory.
type Statement struct {
	// ID is T-<NVMe/TCP section>-NN or B-<Base section or figure>-NN.
	ID string `json:"id"`
	// Binds is controller, host, both or meta.
	Binds string `json:"binds"`
	// Keyword is the spec's word (shall, should not, indicative, M...).
	Keyword string `json:"keyword"`
	// Section is the section (and figure) of the text.
	Section string `json:"section"`
	// Status is the inventory's judgement.
	Status StatementStatus `json:"status"`
	// PartialBy, for a partly statement, are the checks that cover part.
	PartialBy []string `json:"partial_by,omitempty"`
	// Contra are checks that contradict the statement (never coverage).
	Contra []string `json:"contradicted_by,omitempty"`
	// Note says what is missing, why, or how the checks cover it.
	Note string `json:"note,omitempty"`
	// Text is a short paraphrase, in our words.
	Text string `json:"statement"`
}

// Doc is the specification the statement comes from.
func (s Statement) Doc() string {
	if strings.HasPrefix(s.ID, "T-") {
		return "NVMe/TCP 1.0"
	}
	return "NVMe Base 2.2"
}

// MayName reports whether a check binding party may name statement s in
// its Requirement.Statements: a target check (controller or both) names
// statements that bind the controller, alone or with the host; a host
// check (package hostconform) names those that bind the host, alone or
// with the controller. Nobody names a meta statement.
func (s Statement) MayName(party Party) bool {
	switch party {
	case Controller, Both:
		return s.Binds == "controller" || s.Binds == "both"
	case Host:
		return s.Binds == "host" || s.Binds == "both"
	}
	return false
}

// CheckStatements checks the statements a check binding party names: each
// is in the inventory and is one such a check may name (MayName).
func CheckStatements(party Party, ids []string) error {
	stmts, err := Statements()
	if err != nil {
		return err
	}
	for _, id := range ids {
		s, ok := findStatement(stmts, id)
		switch {
		case !ok:
			return fmt.Errorf("statement %s is not in statements.tsv", id)
		case !s.MayName(party):
			return fmt.Errorf("statement %s binds %s: a check that binds the %s may not name it", id, s.Binds, party)
		}
	}
	return nil
}

// ControllerSide reports whether the statement binds the controller (alone
// or with the host): the statements conform can judge.
func (s Statement) ControllerSide() bool { return s.Binds == "controller" || s.Binds == "both" }

var statementIDPattern = regexp.MustCompile(`^(T-[0-9]+(\.[0-9]+)*|B-([0-9]+(\.[0-9]+)*|F[0-9]+|CAP|CC|CSTS|L70))-[0-9]{2}$`)

// Statements parses the embedded inventory, in file order.
func Statements() ([]Statement, error) {
	return parseStatements(statementsTSV)
}

func parseStatements(tsv string) ([]Statement, error) {
	var out []Statement
	seen := map[string]bool{}
	header := false
	for n, line := range strings.Split(tsv, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if !header {
			header = true
			if f[0] != "id" {
				return nil, fmt.Errorf("statements.tsv:%d: want the column header first", n+1)
			}
			continue
		}
		if len(f) != 9 {
			return nil, fmt.Errorf("statements.tsv:%d: %d columns, want 9", n+1, len(f))
		}
		s := Statement{ID: f[0], Binds: f[1], Keyword: f[2], Section: f[3], Status: StatementStatus(f[4]),
			PartialBy: splitList(f[5]), Contra: splitList(f[6]), Note: f[7], Text: f[8]}
		if !statementIDPattern.MatchString(s.ID) {
			return nil, fmt.Errorf("statements.tsv:%d: malformed ID %q", n+1, s.ID)
		}
		if seen[s.ID] {
			return nil, fmt.Errorf("statements.tsv:%d: duplicate ID %s", n+1, s.ID)
		}
		seen[s.ID] = true
		switch s.Binds {
		case "controller", "host", "both", "meta":
		default:
			return nil, fmt.Errorf("statements.tsv:%d: %s binds %q", n+1, s.ID, s.Binds)
		}
		switch s.Status {
		case StCovered, StPartly, StOpen, StTLS, StNT, StNA, StHost, StMeta:
		default:
			return nil, fmt.Errorf("statements.tsv:%d: %s has status %q", n+1, s.ID, s.Status)
		}
		if (s.Status == StHost) != (s.Binds == "host") || (s.Status == StMeta) != (s.Binds == "meta") {
			return nil, fmt.Errorf("statements.tsv:%d: %s binds %s but has status %s", n+1, s.ID, s.Binds, s.Status)
		}
		if s.Status != StPartly && len(s.PartialBy) > 0 {
			return nil, fmt.Errorf("statements.tsv:%d: %s lists partial_by but is %s", n+1, s.ID, s.Status)
		}
		if s.Text == "" || s.Section == "" || s.Keyword == "" {
			return nil, fmt.Errorf("statements.tsv:%d: %s lacks its section, keyword or paraphrase", n+1, s.ID)
		}
		if s.Note == "" && s.Status != StCovered && s.Status != StTLS {
			return nil, fmt.Errorf("statements.tsv:%d: %s is %s without a note saying why or what is missing", n+1, s.ID, s.Status)
		}
		out = append(out, s)
	}
	return out, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// mergeStatements adds a check's statements from existingStatements to the
// ones its Requirement names, keeping order and dropping repeats.
func mergeStatements(own, more []string) []string {
	if len(more) == 0 {
		return own
	}
	out := append([]string(nil), own...)
	for _, s := range more {
		dup := false
		for _, o := range out {
			dup = dup || o == s
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}

// Coverage is what the matrix says of a statement.
type Coverage string

// Matrix coverage values.
const (
	Covered       Coverage = "covered"
	Partly        Coverage = "partly"
	NotCovered    Coverage = "not covered"
	NotApplicable Coverage = "not applicable"
)

// MatrixRow is one statement of the traceability matrix.
type MatrixRow struct {
	Statement
	// Coverage is derived from the inventory's status and the checks.
	Coverage Coverage `json:"coverage"`
	// Checks are the checks whose Requirement.Statements name it.
	Checks []string `json:"checks,omitempty"`
	// Reason says what is missing (partly), why it does not apply, or why
	// it is not covered.
	Reason string `json:"reason,omitempty"`
}

// CoverageCount is one line of the matrix summary.
type CoverageCount struct {
	Statements    int `json:"statements"`
	Covered       int `json:"covered"`
	Partly        int `json:"partly"`
	NotCovered    int `json:"not_covered"`
	NotApplicable int `json:"not_applicable"`
}

func (c *CoverageCount) add(r MatrixRow) {
	c.Statements++
	switch r.Coverage {
	case Covered:
		c.Covered++
	case Partly:
		c.Partly++
	case NotCovered:
		c.NotCovered++
	default:
		c.NotApplicable++
	}
}

// MatrixSummary gives the coverage figures the spec-coverage audit
// computes: over the statements that bind the controller (alone or with
// the host), per document and in all, and the headline figure that leaves
// out TLS and what a host-side test cannot observe.
type MatrixSummary struct {
	Statements int           `json:"statements"`
	TCP        CoverageCount `json:"nvme_tcp_controller_side"`
	Base       CoverageCount `json:"base_fabrics_controller_side"`
	All        CoverageCount `json:"controller_side"`
	// Observable leaves out TLS, not-observable and not-applicable
	// statements: the requirements a host-side tester can check today.
	Observable CoverageCount `json:"observable"`
	// HostOnly statements bind only the host (the host-conformance issue);
	// Meta bind nobody.
	HostOnly int `json:"host_only"`
	Meta     int `json:"meta"`
	// Both counts the controller-side statements that bind both sides.
	Both int `json:"both"`
	// Contradicted lists statements that a check contradicts.
	Contradicted []string `json:"contradicted,omitempty"`
	// ChecksNamed is how many checks name at least one statement; Checks
	// is how many there are (the rest test rules outside the inventory,
	// e.g. Identify fields and NVM commands).
	ChecksNamed int `json:"checks_naming_statements"`
	Checks      int `json:"checks"`
}

// Percent is part of whole in percent, rounded to the nearest (0 for no
// whole), as the spec-coverage audit gives its figures.
func Percent(part, whole int) int {
	if whole == 0 {
		return 0
	}
	return (part*200 + whole) / (2 * whole)
}

// Matrix joins the inventory with the checks: for every statement, the
// checks whose Requirement.Statements name it and the coverage that
// follows. It is computed from the code; TestStatementMatrix holds the
// inventory to it.
func Matrix() ([]MatrixRow, MatrixSummary, error) {
	stmts, err := Statements()
	if err != nil {
		return nil, MatrixSummary{}, err
	}
	reqs := Requirements()
	return buildMatrix(stmts, reqs)
}

func buildMatrix(stmts []Statement, reqs []Requirement) ([]MatrixRow, MatrixSummary, error) {
	by := map[string][]string{}
	sum := MatrixSummary{Statements: len(stmts), Checks: len(reqs)}
	for _, r := range reqs {
		if len(r.Statements) > 0 {
			sum.ChecksNamed++
		}
		for _, s := range r.Statements {
			by[s] = append(by[s], r.ID)
		}
	}
	rows := make([]MatrixRow, 0, len(stmts))
	for _, s := range stmts {
		checks := by[s.ID]
		sort.Strings(checks)
		row := MatrixRow{Statement: s, Checks: checks, Reason: s.Note}
		row.Coverage = derive(s, checks)
		if row.Coverage == NotApplicable {
			row.Reason = naReason(s)
		}
		if c := contradictions(s, checks); len(c) > 0 {
			sum.Contradicted = append(sum.Contradicted, s.ID)
			row.Reason = fmt.Sprintf("contradicted by %s; %s", strings.Join(c, ", "), row.Reason)
		}
		rows = append(rows, row)
		switch {
		case s.Binds == "host":
			sum.HostOnly++
			continue
		case s.Binds == "meta":
			sum.Meta++
			continue
		}
		if s.Binds == "both" {
			sum.Both++
		}
		if s.Doc() == "NVMe/TCP 1.0" {
			sum.TCP.add(row)
		} else {
			sum.Base.add(row)
		}
		sum.All.add(row)
		if row.Coverage != NotApplicable {
			sum.Observable.add(row)
		}
	}
	for id := range by {
		if _, ok := findStatement(stmts, id); !ok {
			return rows, sum, fmt.Errorf("suites: checks %v name statement %s, which is not in statements.tsv", by[id], id)
		}
	}
	return rows, sum, nil
}

// derive is the matrix's coverage of s, named by checks. A check naming
// the statement covers it, unless the inventory says those checks drive
// only part of it; not-applicable statements nobody covers say why.
func derive(s Statement, checks []string) Coverage {
	full := false
	for _, c := range checks {
		if !contains(s.PartialBy, c) {
			full = true
		}
	}
	switch {
	case s.Status == StHost || s.Status == StMeta:
		return NotApplicable
	case full:
		return Covered
	case s.Status == StPartly:
		return Partly
	case s.Status == StTLS || s.Status == StNT || s.Status == StNA:
		return NotApplicable
	}
	return NotCovered // open, or covered by nobody (TestStatementMatrix fails that)
}

func naReason(s Statement) string {
	// The inventory's notes say "NT: why"; the reason says it in words.
	nt := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s.Note, "NT"), ":"))
	if nt == "." {
		nt = ""
	}
	switch s.Status {
	case StTLS:
		if strings.HasPrefix(s.Note, "NT") {
			return withWhy("TLS is not implemented, and this is not observable by a host-side test", nt)
		}
		return withWhy("TLS is not implemented", s.Note)
	case StNT:
		return withWhy("not observable by a host-side test", nt)
	case StNA:
		return "cannot arise over NVMe/TCP: " + s.Note
	case StHost:
		return "binds the host only (host conformance, issue 16)"
	case StMeta:
		return "binds no implementation"
	}
	return s.Note
}

func withWhy(what, why string) string {
	if why == "" {
		return what
	}
	return what + ": " + why
}

// contradictions are the inventory's contradicting checks that still do
// not name the statement (one that names it claims to enforce it now).
func contradictions(s Statement, checks []string) []string {
	var out []string
	for _, c := range s.Contra {
		if !contains(checks, c) {
			out = append(out, c)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func findStatement(stmts []Statement, id string) (Statement, bool) {
	for _, s := range stmts {
		if s.ID == id {
			return s, true
		}
	}
	return Statement{}, false
}

// WriteMatrix writes the traceability matrix: one line per statement
// (ID, binds, keyword, coverage, the checks, the reason) and the summary,
// as text or, with format "json", as {"summary":..., "statements":[...]}.
func WriteMatrix(w io.Writer, format string) error {
	rows, sum, err := Matrix()
	if err != nil {
		return err
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Summary    MatrixSummary `json:"summary"`
			Statements []MatrixRow   `json:"statements"`
		}{sum, rows})
	case "text", "":
	default:
		return fmt.Errorf("suites: matrix format %q: want text or json", format)
	}
	// The checks and the reason vary too much in width for columns: they
	// follow the fixed ones, the reason on its own indented line.
	fmt.Fprintf(w, "%-15s %-10s %-10s %-14s %s\n", "STATEMENT", "BINDS", "KEYWORD", "COVERAGE", "CHECKS / REASON")
	for _, r := range rows {
		fmt.Fprintf(w, "%-15s %-10s %-10s %-14s %s\n", r.ID, r.Binds, r.Keyword, r.Coverage, orDash(compactIDs(r.Checks)))
		if r.Reason != "" && r.Coverage != Covered {
			fmt.Fprintf(w, "%54s%s\n", "", clipReason(r.Reason))
		}
	}
	writeMatrixSummary(w, sum)
	return nil
}

// compactIDs writes sorted check IDs with runs shortened:
// TCP-PDU-001..004 TCP-PDU-007.
func compactIDs(ids []string) string {
	var out []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && nextID(ids[j], ids[j+1]) {
			j++
		}
		if j > i {
			out = append(out, ids[i]+".."+ids[j][len(ids[j])-3:])
		} else {
			out = append(out, ids[i])
		}
		i = j + 1
	}
	return strings.Join(out, " ")
}

// nextID reports whether b is the check right after a (same prefix, next
// number).
func nextID(a, b string) bool {
	if len(a) != len(b) || len(a) < 4 || a[:len(a)-3] != b[:len(b)-3] {
		return false
	}
	var x, y int
	_, e1 := fmt.Sscanf(a[len(a)-3:], "%d", &x)
	_, e2 := fmt.Sscanf(b[len(b)-3:], "%d", &y)
	return e1 == nil && e2 == nil && y == x+1
}

func clipReason(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

func writeMatrixSummary(w io.Writer, s MatrixSummary) {
	fmt.Fprintf(w, "\n%d statements: %d bind the controller (%d of them both sides), %d only the host, %d nobody.\n",
		s.Statements, s.All.Statements, s.Both, s.HostOnly, s.Meta)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "controller side\tstatements\tcovered\tpartly\tnot covered\tnot applicable\t")
	line := func(name string, c CoverageCount) {
		judged := c.Statements - c.NotApplicable
		fmt.Fprintf(tw, "%s\t%d\t%d (%d%%)\t%d (%d%%)\t%d (%d%%)\t%d\t\n", name, c.Statements,
			c.Covered, Percent(c.Covered, judged), c.Partly, Percent(c.Partly, judged), c.NotCovered, Percent(c.NotCovered, judged), c.NotApplicable)
	}
	line("NVMe/TCP 1.0", s.TCP)
	line("Base 2.2 Fabrics", s.Base)
	line("all", s.All)
	_ = tw.Flush()
	o := s.Observable
	fmt.Fprintf(w, "Observable controller requirements (TLS and not-observable left out): %d: %d covered (%d%%), %d partly (%d%%), %d not covered (%d%%).\n",
		o.Statements, o.Covered, Percent(o.Covered, o.Statements), o.Partly, Percent(o.Partly, o.Statements), o.NotCovered, Percent(o.NotCovered, o.Statements))
	if len(s.Contradicted) > 0 {
		fmt.Fprintf(w, "Contradicted by a check (not counted as coverage): %s.\n", strings.Join(s.Contradicted, ", "))
	}
	fmt.Fprintf(w, "%d of %d checks name statements; the others test rules outside these documents' Fabrics parts (Identify fields, logs, NVM commands).\n", s.ChecksNamed, s.Checks)
}
