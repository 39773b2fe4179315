package suites

import (
	"strings"
	"testing"
)

// TestStatementMatrix keeps the traceability matrix complete and
// generated from the code: every statement of the inventory has an entry,
// every statement ID a check names exists (and binds the controller), and
// a statement the inventory calls covered is named by some check. A new
// check only names its statements in Requirement.Statements: the matrix
// then shows them covered without any edit to statements.tsv.
func TestStatementMatrix(t *testing.T) {
	stmts, err := Statements()
	if err != nil {
		t.Fatal(err)
	}
	// The inventory's extent: 183 statements of NVMe/TCP 1.0 and 206 of
	// the Base Fabrics parts (the spec-coverage audit's count). A
	// statement found later is added with the next free ordinal.
	var tcp, base int
	byID := map[string]Statement{}
	for _, s := range stmts {
		byID[s.ID] = s
		if strings.HasPrefix(s.ID, "T-") {
			tcp++
		} else {
			base++
		}
	}
	if tcp < 183 || base < 206 {
		t.Errorf("the inventory holds %d NVMe/TCP and %d Base statements, want at least 183 and 206", tcp, base)
	}

	reqs := Requirements()
	checks := map[string]bool{}
	named := map[string][]string{}
	for _, r := range reqs {
		checks[r.ID] = true
		for _, id := range r.Statements {
			named[id] = append(named[id], r.ID)
			s, ok := byID[id]
			switch {
			case !ok:
				t.Errorf("%s names statement %s, which statements.tsv does not hold", r.ID, id)
			case !s.MayName(r.Binds):
				t.Errorf("%s names statement %s, which binds %s: a target check judges the controller (host statements are host checks', package hostconform)", r.ID, id, s.Binds)
			}
		}
	}
	for id := range existingStatements {
		if !checks[id] {
			t.Errorf("existingStatements names check %s, which does not exist", id)
		}
	}
	for _, s := range stmts {
		if s.Status == StCovered && len(named[s.ID]) == 0 {
			t.Errorf("%s is covered in statements.tsv but no check names it in Requirement.Statements: name it in the check that enforces it, or give the statement its true status", s.ID)
		}
		for _, c := range append(append([]string(nil), s.PartialBy...), s.Contra...) {
			if !checks[c] {
				t.Errorf("%s: statements.tsv names check %s, which does not exist", s.ID, c)
			}
		}
	}

	rows, sum, err := Matrix()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(stmts) {
		t.Fatalf("the matrix has %d rows for %d statements", len(rows), len(stmts))
	}
	for _, r := range rows {
		switch r.Coverage {
		case Covered:
			if len(r.Checks) == 0 {
				t.Errorf("%s is covered by no check", r.ID)
			}
		case Partly, NotCovered, NotApplicable:
			if r.Reason == "" {
				t.Errorf("%s is %s without a reason", r.ID, r.Coverage)
			}
		default:
			t.Errorf("%s has no entry in the matrix (coverage %q)", r.ID, r.Coverage)
		}
	}
	if sum.All.Statements+sum.HostOnly+sum.Meta != len(stmts) {
		t.Errorf("summary counts %d+%d+%d statements of %d", sum.All.Statements, sum.HostOnly, sum.Meta, len(stmts))
	}
}

// TestMatrixDerivesFromChecks: the inventory's status is only the
// starting point; which checks name a statement decides.
func TestMatrixDerivesFromChecks(t *testing.T) {
	stmts := []Statement{
		{ID: "T-9.1-01", Binds: "controller", Status: StOpen, Note: "no check drives it"},
		{ID: "T-9.1-02", Binds: "controller", Status: StPartly, PartialBy: []string{"TCP-OLD-001"}, Note: "one case only"},
		{ID: "T-9.1-03", Binds: "controller", Status: StPartly, PartialBy: []string{"TCP-OLD-001"}, Note: "one case only"},
		{ID: "T-9.1-04", Binds: "controller", Status: StOpen, Contra: []string{"TCP-OLD-001"}, Note: "the check wants the opposite"},
		{ID: "T-9.1-05", Binds: "controller", Status: StOpen, Contra: []string{"TCP-OLD-002"}, Note: "the check wants the opposite"},
		{ID: "T-9.1-06", Binds: "both", Status: StTLS},
		{ID: "B-9-01", Binds: "host", Status: StHost, Note: "host"},
		{ID: "B-9-02", Binds: "controller", Status: StCovered},
	}
	reqs := []Requirement{
		{ID: "TCP-OLD-001", Statements: []string{"T-9.1-02", "T-9.1-03", "B-9-02"}},
		{ID: "TCP-OLD-002", Statements: []string{"T-9.1-05"}},             // fixed: now enforces it
		{ID: "TCP-NEW-001", Statements: []string{"T-9.1-01", "T-9.1-03"}}, // a new check
	}
	rows, sum, err := buildMatrix(stmts, reqs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Coverage{
		"T-9.1-01": Covered, "T-9.1-02": Partly, "T-9.1-03": Covered, "T-9.1-04": NotCovered,
		"T-9.1-05": Covered, "T-9.1-06": NotApplicable, "B-9-01": NotApplicable, "B-9-02": Covered,
	}
	for _, r := range rows {
		if r.Coverage != want[r.ID] {
			t.Errorf("%s: %s, want %s", r.ID, r.Coverage, want[r.ID])
		}
	}
	if strings.Join(sum.Contradicted, " ") != "T-9.1-04" {
		t.Errorf("contradicted %v, want [T-9.1-04]", sum.Contradicted)
	}
	if o := sum.Observable; o.Statements != 6 || o.Covered != 4 || o.Partly != 1 || o.NotCovered != 1 {
		t.Errorf("observable %+v, want 6 statements: 4 covered, 1 partly, 1 not covered", o)
	}
	if _, _, err := buildMatrix(stmts, []Requirement{{ID: "TCP-NEW-002", Statements: []string{"T-9.9-01"}}}); err == nil {
		t.Error("a check naming an unknown statement built a matrix")
	}
}

func TestParseStatementsRejects(t *testing.T) {
	const head = "id\tbinds\tkeyword\tsection\tstatus\tpartial_by\tcontra\tnote\tstatement\n"
	for name, line := range map[string]string{
		"bad ID":             "T-3.1-1\tcontroller\tshall\t3.1\topen\t\t\twhy\tx",
		"bad status":         "T-3.1-01\tcontroller\tshall\t3.1\tmaybe\t\t\twhy\tx",
		"host not host":      "T-3.1-01\thost\tshall\t3.1\topen\t\t\twhy\tx",
		"open without note":  "T-3.1-01\tcontroller\tshall\t3.1\topen\t\t\t\tx",
		"columns":            "T-3.1-01\tcontroller\tshall\t3.1\topen\t\twhy\tx",
		"partial not partly": "T-3.1-01\tcontroller\tshall\t3.1\tcovered\tTCP-IC-001\t\t\tx",
	} {
		if _, err := parseStatements(head + line + "\n"); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := parseStatements(head + "T-3.1-01\tcontroller\tshall\t3.1\topen\t\t\twhy\tx\n" + "T-3.1-01\tcontroller\tshall\t3.1\topen\t\t\twhy\tx\n"); err == nil {
		t.Error("a duplicate ID parsed")
	}
}
