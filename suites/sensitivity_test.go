package suites

import (
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nvmftest/nvmftest/target"
)

// quirkExpectation is what the suite must make of the reference target
// with one quirk (target.Quirks describes each).
type quirkExpectation struct {
	// fail lists the checks that must notice a deviation: they and only
	// they fail. Empty for an allowed personality; empty for a deviation
	// means no check notices it yet (TestSensitivity logs those).
	fail []string
	// checkBugs lists checks that fail although they do not own the rule
	// the quirk breaks (one root cause fanning out, issue 12 point 2) or
	// the quirk's behaviour is one the specification allows: bugs in those
	// checks, tracked here so that they are seen and so that fixing one
	// shows up as "expected to fail but did not". Each entry goes when
	// its check is fixed; in the end the field is empty everywhere.
	checkBugs []string
	// slow marks a quirk whose suite run takes minutes: it runs only
	// with NVMFTEST_SENSITIVITY_SLOW=1.
	slow string
}

// quirkExpect is the one table the sensitivity test holds the suite to:
// per quirk, the check IDs that fail against the reference target with
// that quirk. When checks are rewritten, run
//
//	NVMFTEST_SENSITIVITY_DUMP=1 go test -run TestSensitivity$ -v ./suites/
//
// and edit the lists from the "failed" lines it prints.
func quirkExpect() map[string]quirkExpectation {
	all := coreQuirkExpect()
	for _, more := range []map[string]quirkExpectation{transportQuirkExpect(), fabricsQuirkExpect(), adminIOQuirkExpect(), authQuirkExpect(), katoFlowQuirkExpect(), discRulesQuirkExpect(), assocQuirkExpect(), propsQuirkExpect(), discRules2QuirkExpect(), tcp2QuirkExpect(), queueQuirkExpect(), fuzzQuirkExpect()} {
		for name, e := range more {
			all[name] = e
		}
	}
	return all
}

// coreQuirkExpect is the table for target/quirks.go's coreQuirks; each
// area's file of quirks has its own (sensitivity_<area>_test.go).
func coreQuirkExpect() map[string]quirkExpectation {
	return map[string]quirkExpectation{
		// Deviations.
		//
		// A target that never sends a C2HTermReq fails the one check that
		// judges that; the checks that judge an FES and FEI skip.
		"no-termreq": {fail: ids("TCP-FATAL-006")},
		// Every check that judges an FES fails on the wrong one (an ICReq
		// with PFV 1 does allow FES 06h: TCP-IC-009 holds).
		"termreq-fes-unsupported": {fail: ids(`
		TCP-DATA-004 TCP-DATA-006 TCP-DATA-007 TCP-DATA-008 TCP-DATA-009
		TCP-DGST-001 TCP-IC-008 TCP-IC-014 TCP-IC-015 TCP-IC-016 TCP-IC-017
		TCP-IC-018 TCP-PDU-001 TCP-PDU-002 TCP-PDU-003 TCP-PDU-004
		TCP-PDU-005 TCP-PDU-006 TCP-PDU-007 TCP-PDU-008 TCP-PDU-009
		TCP-PDU-010 TCP-PDU-011 TCP-PDU-012 TCP-PDU-013 TCP-PDU-014
		TCP-PDU-015 TCP-PDU-016 TCP-PDU-017 TCP-PDU-018 TCP-PDU-019
		TCP-PDU-021 TCP-PDU-022 TCP-PDU-023 TCP-PDU-024 TCP-PDU-025
		TCP-PDU-026 TCP-PDU-027 TCP-PDU-028 TCP-PDU-029 TCP-HDGST-001
		TCP-DATA-032 TCP-TERM-005`)},
		"termreq-no-header":       {fail: ids("TCP-FATAL-002")},
		"process-after-fatal":     {fail: ids("TCP-FATAL-003 TCP-TERM-001")},
		"accept-foreign-hostnqn":  {fail: ids("FAB-CONN-009")},
		"no-error-log":            {fail: ids("ADM-LOG-001")},
		"kato-never-expires":      {fail: ids("ADM-KA-002")},
		"digest-error-fatal":      {fail: ids("TCP-DGST-002 TCP-DGST-004")},
		"connect-cntlid-reserved": {fail: ids("FAB-CONN-001")},
		// A conforming host refuses an ICResp with PFV 1: the ICResp check
		// fails and every check that needs an association skips.
		"icresp-pfv-1":            {fail: ids("TCP-IC-001")},
		"reserved-fields-nonzero": {fail: ids("ADM-LOG-002")},

		// One field or one status each. Where a quirk fails a discovery
		// check too, the discovery controller breaks the same rule.
		"identify-ver-mismatch": {fail: ids("ADM-ID-001 DISC-ID-005")},
		"identify-cntlid-wrong": {fail: ids("ADM-ID-002")},
		"identify-subnqn-wrong": {fail: ids("ADM-ID-003")},
		"identify-sn-empty":     {fail: ids("ADM-ID-004")},
		"identify-sqes-wrong":   {fail: ids("ADM-ID-005")},
		"identify-maxcmd-zero":  {fail: ids("ADM-ID-006")},
		"identify-nn-zero":      {fail: ids("ADM-ID-007")},
		"identify-sgls-none":    {fail: ids("ADM-ID-008")},
		// FCATT says static while the subsystem hands out controllers
		// dynamically: the model check and the model-dependent Connect
		// check (which then expects FFFFh refused) both see the lie.
		"identify-fcatt-static":    {fail: ids("ADM-ID-011 FAB-CONN-005 DISC-RULE-003 DISC-RULE-008")},
		"identify-cntrltype-zero":  {fail: ids("ADM-ID-012 DISC-ID-002")},
		"identify-kas-zero":        {fail: ids("ADM-ID-013")},
		"identify-cns-reserved-ok": {fail: ids("ADM-ID-015")},
		"features-reserved-ok":     {fail: ids("ADM-FEAT-006 DISC-RULE-013")},
		"log-page-reserved-ok":     {fail: ids("ADM-LOG-010 DISC-CMD-002 DISC-RULE-004 DISC-RULE-011")},
		"aer-limit-ignored":        {fail: ids("ADM-AER-001")},
		"keepalive-unsupported": {fail: ids("ADM-KA-001 ADM-KA-003"),
			// keeps its association alive with Keep Alive while it waits
			checkBugs: ids("ADM-AER-001")},
		"smart-temperature-zero": {fail: ids("ADM-LOG-003")},
		"admin-before-enable":    {fail: ids("FAB-PROP-021 FAB-CTRL-003")},
		"disable-keeps-ready":    {fail: ids("FAB-PROP-024")},
		"shutdown-never-completes": {fail: ids("FAB-PROP-022 FAB-PROP-023"),
			slow: "the host library's Close waits for shutdown to complete on every association: about 8 minutes"},
		"ioq-before-enable":      {fail: ids("FAB-IOQ-002")},
		"connect-recfmt-ignored": {fail: ids("FAB-CONN-003")},
		"connect-sqsize-zero-ok": {fail: ids("FAB-CONN-006 FAB-IOQ-008")},
		"discovery-asqsz-small":  {fail: ids("DISC-LOG-008")},
		// Without a consistent log nothing else about it can be judged:
		// the other log checks skip.
		"discovery-genctr-unstable": {fail: ids("DISC-LOG-011")},
		"lba-range-invalid-field":   {fail: ids("IO-ERR-001 IO-ERR-002")},
		// NSID 0, FFFFFFFFh and FFFFFFFEh answered Invalid Field: each
		// check judges its own NSID.
		"invalid-ns-invalid-field": {fail: ids("ADM-NS-004 ADM-NS-005 ADM-NS-007 IO-ERR-005")},
		"io-opcode-invalid-field":  {fail: ids("IO-ERR-006")},
		// Every check that reads back what it wrote.
		"writes-dropped": {fail: ids(`
		IO-CMP-001 IO-FUSE-001 IO-FUSE-002 IO-FUSE-003 IO-RW-001 IO-RW-002
		IO-RW-004 IO-RW-005`)},
		"flush-fails":                         {fail: ids("IO-RW-003")},
		"compare-always-equal":                {fail: ids("IO-CMP-002")},
		"write-zeroes-noop":                   {fail: ids("IO-WZ-001")},
		"data-digest-ignored":                 {fail: ids("TCP-DGST-002 TCP-DGST-004")},
		"cap-cqr-clear":                       {fail: ids("FAB-PROP-003")},
		"cc-initial-nonzero":                  {fail: ids("FAB-PROP-008")},
		"cc-readback-no-en":                   {fail: ids("FAB-PROP-026")},
		"property-size-unchecked":             {fail: ids("FAB-PROP-013 FAB-PROP-014 FAB-PROP-020")},
		"ioq-property-get-ok":                 {fail: ids("FAB-IOQ-011")},
		"connect-cntlid-ignored":              {fail: ids("FAB-CONN-004 FAB-CONN-005 FAB-CNTLID-001")},
		"connect-unknown-subnqn-invalid-host": {fail: ids("FAB-CONN-008 FAB-IOQ-009")},
		"ioq-host-unchecked":                  {fail: ids("FAB-IOQ-006 FAB-IOQ-012")},
		"ioq-sqsize-unchecked":                {fail: ids("FAB-IOQ-007")},
		"ioq-cntlid-unknown-seq-error":        {fail: ids("FAB-IOQ-005")},
		"discovery-identify-ns-ok":            {fail: ids("DISC-CMD-001")},
		"discovery-nvm-admin-ok":              {fail: ids("DISC-CMD-003")},
		"discovery-trsvcid-name":              {fail: ids("DISC-LOG-004 DISC-RULE-022")},
		"discovery-adrfam-wrong":              {fail: ids("DISC-LOG-003")},
		"discovery-sectype-bad":               {fail: ids("DISC-LOG-005")},
		"inactive-ns-nonzero":                 {fail: ids("ADM-NS-003")},
		"ns-ncap-above-nsze":                  {fail: ids("ADM-NS-001")},
		"firmware-log-no-active-slot":         {fail: ids("ADM-LOG-005")},
		"csts-ready-at-connect":               {fail: ids("FAB-PROP-009")},
		"discovery-subtype-wrong":             {fail: ids("DISC-LOG-002 DISC-LOG-006")},
		"no-ns-change-aen":                    {fail: ids("ADM-AER-002")},
		"no-discovery-change-aen":             {fail: ids("DISC-AEN-001")},

		// Allowed personalities: nothing may fail.
		"close-after-termreq":       {},
		"kas-10s":                   {},
		"connect-no-dnr":            {},
		"discovery-non-persistent":  {},
		"unique-discovery-nqn":      {},
		"qid-dup-invalid-qid":       {},
		"reserved-property-zero":    {},
		"identify-msdbd-zero":       {},
		"property-set-readonly-ok":  {},
		"cap-to-zero":               {},
		"vs-1.1":                    {},
		"discovery-lpa-no-extended": {},
		"h2ctermreq-answered":       {},
	}
}

// sensitivityParallel is how many suite runs go at once. A suite run
// against the reference target mostly waits for the reactions its checks
// give a target time for (keep-alive and CQT windows, fatal-error closes;
// confinedChecks keeps the longest waits to the quirks that own them), so
// three runs per core keep the cores busy without starving them (at
// four, on two shared cores, checks with tight reaction windows began to
// miss them).
var sensitivityParallel = max(3, 3*runtime.GOMAXPROCS(0))

// TestSensitivity runs the whole suite against the reference target once
// per quirk (in child processes, several at a time) and holds the set of
// failed checks to quirkExpect: a deviation must fail exactly the checks
// that own its rule, an allowed personality none. A difference prints,
// per quirk, the unexpected failures (with their messages) and the
// checks expected to fail that passed.
func TestSensitivity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per quirk (minutes): not with -short")
	}
	if os.Getenv(sensitivityQuirkEnv) != "" {
		t.Skip("in a child")
	}
	quirks := target.Quirks()
	if only := os.Getenv("NVMFTEST_SENSITIVITY_ONLY"); only != "" {
		// Calibration: just these quirks (comma-separated).
		quirks = slices.DeleteFunc(quirks, func(q target.Quirk) bool { return !slices.Contains(strings.Split(only, ","), q.Name) })
	}
	quirkExpect := quirkExpect()
	for _, q := range quirks {
		if _, ok := quirkExpect[q.Name]; !ok {
			t.Errorf("quirk %s has no entry in quirkExpect", q.Name)
		}
	}
	for name := range quirkExpect {
		if _, ok := target.LookupQuirk(name); !ok && os.Getenv("NVMFTEST_SENSITIVITY_ONLY") == "" {
			t.Errorf("quirkExpect names %s, which is not a quirk", name)
		}
	}
	if os.Getenv("NVMFTEST_SENSITIVITY_SLOW") == "" {
		quirks = slices.DeleteFunc(quirks, func(q target.Quirk) bool {
			if why := quirkExpect[q.Name].slow; why != "" {
				t.Logf("%s: not run (%s); NVMFTEST_SENSITIVITY_SLOW=1 runs it", q.Name, why)
				return true
			}
			return false
		})
	}
	// The baseline first: quirk by quirk comparisons mean nothing if the
	// reference target itself fails checks (TestConformance says which).
	base, err := runQuirkChild(t, noQuirk)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.Failed) > 0 {
		unexpected, _ := quirkDiff(base, nil)
		t.Fatalf("the reference target without quirks fails %d checks; fix those first:\n  %s",
			len(base.Failed), strings.Join(unexpected, "\n  "))
	}
	runs := make([]quirkRun, len(quirks))
	errs := make([]error, len(quirks))
	sem := make(chan struct{}, sensitivityParallel)
	var wg sync.WaitGroup
	for i, q := range quirks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i], errs[i] = runQuirkChild(t, q.Name, confinedChecks(base, quirkExpect[q.Name])...)
		}()
	}
	wg.Wait()
	if os.Getenv("NVMFTEST_SENSITIVITY_DUMP") != "" {
		var b strings.Builder
		writeQuirkFailures(&b, runs)
		t.Log("failed, per quirk:\n" + b.String())
	}
	for i, q := range quirks {
		if errs[i] != nil {
			t.Error(errs[i])
			continue
		}
		exp := quirkExpect[q.Name]
		if q.Kind == target.QuirkAllowed && len(exp.fail) > 0 {
			t.Errorf("%s is an allowed personality: quirkExpect may list check bugs for it, never checks that must fail", q.Name)
		}
		if q.Kind == target.QuirkDeviation && len(exp.fail) == 0 {
			t.Logf("%s (deviation): no check notices it yet", q.Name)
		}
		if n := len(exp.checkBugs); n > 0 {
			list := strings.Join(exp.checkBugs, " ")
			if n > 20 {
				list = strings.Join(exp.checkBugs[:20], " ") + " ..."
			}
			t.Logf("%s (%s): %d checks fail without owning the rule it breaks (bugs in the checks): %s", q.Name, q.Kind, n, list)
		}
		unexpected, missed := quirkDiff(runs[i], append(append([]string(nil), exp.fail...), exp.checkBugs...))
		if len(unexpected) > 0 || len(missed) > 0 {
			var b strings.Builder
			if len(unexpected) > 0 {
				b.WriteString("\n  unexpected failures:\n    " + strings.Join(unexpected, "\n    "))
			}
			if len(missed) > 0 {
				b.WriteString("\n  expected to fail but did not:\n    " + strings.Join(missed, "\n    "))
			}
			t.Errorf("quirk %s (%s, suite run %v):%s", q.Name, q.Kind, runs[i].Elapsed.Round(1e9), b.String())
		}
	}
}

// TestSensitivityCoverage lists the checks that no quirk is expected to
// fail and that do not say why they cannot fail (Requirement.Unfailable):
// checks nothing has shown able to fail. While issue 12 rewrites the
// checks it only logs them; it becomes a failure once coverage is
// complete.
// maxUnproven is how many checks may still lack a proof that they can
// fail: no quirk, no fake-peer case fails them and they do not say why
// they cannot fail (Requirement.Unfailable). It only ever goes down: a
// new check comes with its proof, and closing the gap lowers it.
const maxUnproven = 0

// failProofs gathers every proof that a check can fail, from the tables
// the tests assert: the quirks of TestSensitivity and the cases of the
// fake controllers (fatalPeerCases, fabPeerCases, discPeerCases).
func failProofs() map[string][]string {
	proofs := map[string][]string{}
	for name, exp := range quirkExpect() {
		for _, id := range exp.fail {
			proofs[id] = append(proofs[id], "quirk "+name)
		}
	}
	for name, c := range fatalPeerCases {
		for id, want := range c.want {
			if strings.HasPrefix(want, "FAIL") {
				proofs[id] = append(proofs[id], "fatal peer "+name)
			}
		}
	}
	for name, c := range fabPeerCases {
		for _, id := range c.fail {
			proofs[id] = append(proofs[id], "fabrics peer "+name)
		}
	}
	for name, c := range discPeerCases {
		for _, id := range c.fail {
			proofs[id] = append(proofs[id], "discovery peer "+name)
		}
	}
	return proofs
}

// TestSensitivityCoverage holds the suite to issue 12's rule that every
// check is shown to fail on some deviation or says why it cannot: it
// lists the checks without a proof and fails when there are more than
// maxUnproven, or when a table names a check that does not exist.
func TestSensitivityCoverage(t *testing.T) {
	proofs := failProofs()
	reqs := Requirements()
	known := map[string]bool{}
	var unproven []string
	for _, r := range reqs {
		known[r.ID] = true
		if len(proofs[r.ID]) == 0 && r.Unfailable == "" {
			unproven = append(unproven, r.ID)
		}
	}
	sort.Strings(unproven)
	t.Logf("%d of %d checks have a proof that they can fail; %d have none and say no reason:\n%s",
		len(reqs)-len(unproven), len(reqs), len(unproven), strings.Join(unproven, " "))
	if len(unproven) > maxUnproven {
		t.Errorf("%d checks lack a proof that they can fail (at most %d): give each new check a quirk or a fake-peer case that fails it, or its Unfailable reason", len(unproven), maxUnproven)
	}
	for id, by := range proofs {
		if !known[id] {
			t.Errorf("%v names check %s, which does not exist", by, id)
		}
	}
}
