package suites

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// xmlNode is a parsed XML element, generic enough to check a document's
// shape against a schema.
type xmlNode struct {
	Name     string
	Attrs    map[string]string
	Children []*xmlNode
	Text     string
}

// reporter is the part of testing.T the checks use, so a test can check
// that they catch what they should.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
}

// recorder is a reporter that only counts.
type recorder struct{ errs int }

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.errs++ }
func (r *recorder) Fatalf(string, ...any) { r.errs++; runtime.Goexit() }
func (r *recorder) Fatal(...any)          { r.errs++; runtime.Goexit() }

func parseXML(t reporter, b []byte) *xmlNode {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("junit.xml is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{Name: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			} else if root == nil {
				root = n
			} else {
				t.Fatal("junit.xml has two root elements")
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(tok)
			}
		}
	}
	if root == nil {
		t.Fatal("junit.xml is empty")
	}
	return root
}

// junitShape is the Jenkins junit XSD (xunit-plugin's junit-4.xsd, the
// Ant format: the elements each element may hold, in order, and its
// attributes, required ones marked "!"), with the two extensions CI
// readers accept and Ant itself lacks: skipped on testsuites and
// properties on a testcase.
var junitShape = map[string]struct {
	children []string // allowed, in this order
	attrs    []string
}{
	"testsuites": {[]string{"testsuite"}, []string{"name", "time", "tests", "failures", "disabled", "errors", "skipped"}},
	"testsuite": {[]string{"properties", "testcase", "system-out", "system-err"},
		[]string{"!name", "!tests", "failures", "errors", "time", "disabled", "skipped", "timestamp", "hostname", "id", "package"}},
	"properties": {[]string{"property"}, nil},
	"property":   {nil, []string{"!name", "!value"}},
	"testcase": {[]string{"properties", "skipped", "error", "failure", "system-out", "system-err"},
		[]string{"!name", "assertions", "time", "classname", "status"}},
	"skipped":    {nil, []string{"message", "type"}},
	"error":      {nil, []string{"message", "type"}},
	"failure":    {nil, []string{"message", "type"}},
	"system-out": {nil, nil},
	"system-err": {nil, nil},
}

// surefireTime is the XSD's time pattern: seconds, a decimal point.
var surefireTime = regexp.MustCompile(`^[0-9]+(\.[0-9]*)?$`)

// checkJUnit checks junit.xml's structure against junitShape, and that
// its counts agree: each testsuite's with its testcases, <testsuites>'
// with the sum of its testsuites. It returns the testcases.
func checkJUnit(t reporter, b []byte) (root *xmlNode, cases []*xmlNode) {
	t.Helper()
	root = parseXML(t, b)
	if root.Name != "testsuites" {
		t.Fatalf("root element <%s>, want <testsuites>", root.Name)
	}
	var walk func(n *xmlNode, path string)
	walk = func(n *xmlNode, path string) {
		path += "/" + n.Name
		shape, ok := junitShape[n.Name]
		if !ok {
			t.Errorf("%s: element not in the JUnit schema", path)
			return
		}
		allowed := map[string]bool{}
		for _, a := range shape.attrs {
			name := strings.TrimPrefix(a, "!")
			allowed[name] = true
			if strings.HasPrefix(a, "!") {
				if _, ok := n.Attrs[name]; !ok {
					t.Errorf("%s: required attribute %s missing", path, name)
				}
			}
		}
		for a := range n.Attrs {
			if !allowed[a] {
				t.Errorf("%s: attribute %s not in the JUnit schema", path, a)
			}
		}
		if v, ok := n.Attrs["time"]; ok && !surefireTime.MatchString(v) {
			t.Errorf("%s: time %q is not seconds", path, v)
		}
		last := -1
		for _, c := range n.Children {
			i := -1
			for j, name := range shape.children {
				if name == c.Name {
					i = j
				}
			}
			switch {
			case i < 0:
				t.Errorf("%s: <%s> not allowed here", path, c.Name)
			case i < last:
				t.Errorf("%s: <%s> out of the schema's order", path, c.Name)
			case i == last && c.Name != "testsuite" && c.Name != "testcase" && c.Name != "property":
				t.Errorf("%s: more than one <%s>", path, c.Name)
			}
			last = max(last, i)
			walk(c, path)
		}
		if n.Name == "testcase" {
			cases = append(cases, n)
		}
	}
	walk(root, "")
	count := func(n *xmlNode, attr string) int {
		v, err := strconv.Atoi(n.Attrs[attr])
		if err != nil {
			t.Errorf("<%s %s=%q>: not a count", n.Name, attr, n.Attrs[attr])
		}
		return v
	}
	sums := map[string]int{}
	for _, ts := range root.Children {
		got := map[string]int{}
		for _, tc := range ts.Children {
			if tc.Name != "testcase" {
				continue
			}
			got["tests"]++
			for _, c := range tc.Children {
				switch c.Name {
				case "failure":
					got["failures"]++
				case "error":
					got["errors"]++
				case "skipped":
					got["skipped"]++
				}
			}
		}
		for _, a := range []string{"tests", "failures", "errors", "skipped", "disabled"} {
			if n := count(ts, a); n != got[a] {
				t.Errorf("testsuite %s: %s=%d, its testcases say %d", ts.Attrs["name"], a, n, got[a])
			}
			sums[a] += count(ts, a)
		}
	}
	for _, a := range []string{"tests", "failures", "errors", "skipped", "disabled"} {
		if n := count(root, a); n != sums[a] {
			t.Errorf("testsuites %s=%d, its testsuites add up to %d", a, n, sums[a])
		}
	}
	return root, cases
}

// props returns a testcase's properties by name (the last of a name).
func props(n *xmlNode) map[string]string {
	m := map[string]string{}
	for _, c := range n.Children {
		if c.Name == "properties" {
			for _, p := range c.Children {
				m[p.Attrs["name"]] = p.Attrs["value"]
			}
		}
	}
	return m
}

func child(n *xmlNode, name string) *xmlNode {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// checkJUnitCases checks what CI readers show per check: a classname by
// area, the requirement as properties, and no testcase that is not a
// check.
func checkJUnitCases(t *testing.T, root *xmlNode, cases []*xmlNode, results []Result) {
	t.Helper()
	if len(cases) != len(results) {
		t.Errorf("%d testcases for %d checks", len(cases), len(results))
	}
	wd, _ := os.Getwd()
	for _, ts := range root.Children {
		if p := ts.Attrs["package"]; p != JUnitPackage || p == wd {
			t.Errorf("testsuite %s: package %q, want %q", ts.Attrs["name"], p, JUnitPackage)
		}
		if h := ts.Attrs["hostname"]; h == wd || strings.Contains(h, "/") {
			t.Errorf("testsuite %s: hostname %q", ts.Attrs["name"], h)
		}
	}
	byID := map[string]Result{}
	for _, r := range results {
		byID[r.ID] = r
	}
	for _, c := range cases {
		p := props(c)
		r, ok := byID[p["id"]]
		if !ok {
			t.Errorf("testcase %q is no check (id property %q)", c.Attrs["name"], p["id"])
			continue
		}
		if want := JUnitPackage + "." + r.Area; c.Attrs["classname"] != want {
			t.Errorf("%s: classname %q, want %q", r.ID, c.Attrs["classname"], want)
		}
		if !strings.HasPrefix(c.Attrs["name"], r.ID+": ") {
			t.Errorf("%s: testcase name %q does not start with the ID", r.ID, c.Attrs["name"])
		}
		want := map[string]string{"section": r.Section, "level": string(r.Level), "keyword": string(r.Keyword), "binds": string(r.Binds), "verdict": r.Verdict()}
		for k, v := range want {
			if v != "" && p[k] != v {
				t.Errorf("%s: property %s=%q, want %q", r.ID, k, p[k], v)
			}
		}
		sk, fl := child(c, "skipped"), child(c, "failure")
		switch r.Verdict() {
		case VerdictFail:
			if fl == nil {
				t.Errorf("%s: failed, no <failure>", r.ID)
			}
		case VerdictPass:
			if sk != nil || fl != nil {
				t.Errorf("%s: passed, yet a <skipped> or <failure>", r.ID)
			}
		default:
			if sk == nil {
				t.Errorf("%s: %s, no <skipped>", r.ID, r.Verdict())
			}
		}
	}
}

// junitSample is a run with every kind of outcome.
func junitSample() Summary {
	s := Summary{Target: "127.0.0.1:4420", SubNQN: "nqn.2014-08.io.nvmftest:target"}
	req := func(id string, k Keyword, title string) Requirement {
		l, _ := k.Level()
		return Requirement{ID: id, Section: "NVMe/TCP 1.0 3.6.2.1", Keyword: k, Binds: Controller, Level: l, Title: title}
	}
	for _, r := range []Result{
		{Requirement: req("TCP-IC-001", Shall, "the target answers ICReq with ICResp"), Area: "transport", State: "passed", Duration: 3 * time.Millisecond,
			Details: []Detail{{"observed", "TCP-IC-001: ICResp in 1ms"}}},
		{Requirement: req("TCP-PDU-004", Indicative, "a bad header digest is fatal"), Area: "transport", State: "failed", Message: "expected <FES 3> & got \"close\"\nmore",
			Duration: 12 * time.Millisecond, Traces: []string{"traces/TCP-PDU-004.pcapng"}},
		{Requirement: req("FAB-CONN-009", Shall, "a Connect from a host the subsystem does not allow fails"), Area: "fabrics", State: "skipped",
			Message: "FAB-CONN-009: give --restricted-nqn NQN", Needs: "--restricted-nqn NQN"},
		{Requirement: req("ADM-ANA-001", May, "ANA log page reports every group"), Area: "admin", State: "skipped", Message: "target lacks ANA"},
		{Requirement: req("ADM-KA-003", Should, "keep alive"), Area: "admin", State: "timedout", Message: "timed out"},
		{Requirement: req("IO-RW-001", Shall, "a read"), Area: "io", State: StateInterrupted, Message: "interrupted while running"},
		{Requirement: req("IO-RW-002", Shall, "another read"), Area: "io", State: StateNotRun, Message: "not run: the run was interrupted"},
	} {
		s.add(r)
	}
	return s
}

// TestJUnitShape: the JUnit file is what a CI system takes as it is: the
// Jenkins/Ant schema's elements and attributes, one testcase per check
// classed by area with the requirement as properties, counts that agree
// between <testsuites> and <testsuite>, no working directory as package.
func TestJUnitShape(t *testing.T) {
	s := junitSample()
	var buf bytes.Buffer
	if err := s.WriteJUnit(&buf, "/runs/r1"); err != nil {
		t.Fatal(err)
	}
	root, cases := checkJUnit(t, buf.Bytes())
	checkJUnitCases(t, root, cases, s.Results)
	if t.Failed() {
		t.Log(buf.String())
	}
	for _, want := range []string{
		`tests="7" failures="2" errors="0" skipped="4" disabled="0"`,
		`<property name="needs" value="--restricted-nqn NQN">`,
		`<skipped message="FAB-CONN-009: give --restricted-nqn NQN" type="needs">`,
		`<failure message="timed out" type="timedout">`,
		"[[ATTACHMENT|/runs/r1/traces/TCP-PDU-004.pcapng]]",
		`<property name="trace" value="traces/TCP-PDU-004.pcapng">`,
		`<property name="observed" value="TCP-IC-001: ICResp in 1ms">`,
		`<property name="verdict" value="not_conformant">`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("junit.xml lacks %s", want)
		}
	}
}

// TestJUnitShapeCatches: the shape check itself catches what Ginkgo's
// junit.xml did wrong.
func TestJUnitShapeCatches(t *testing.T) {
	for name, doc := range map[string]string{
		"counts disagree": `<testsuites tests="1" disabled="1" errors="0" failures="0"><testsuite name="x" tests="1" disabled="0" skipped="1" errors="0" failures="0"><testcase name="a"><skipped/></testcase></testsuite></testsuites>`,
		"unknown attr":    `<testsuites><testsuite name="x" tests="0" bogus="1"></testsuite></testsuites>`,
		"order":           `<testsuites><testsuite name="x" tests="1" failures="1" errors="0" skipped="0" disabled="0"><testcase name="a"><system-out/><failure/></testcase></testsuite></testsuites>`,
	} {
		rec := &recorder{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			checkJUnit(rec, []byte(doc))
		}()
		<-done
		if rec.errs == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}
