package suites

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// JUnit XML in the shape Jenkins, GitLab and GitHub test reporters read
// (Ant's format as the Jenkins junit XSD describes it), with the two
// extensions those readers accept: a skipped count on <testsuites> and
// <properties> on a <testcase> (as pytest, JUnit 5 and Ginkgo write).
// Ginkgo's own junit.xml is not used: it puts every check under one
// classname, adds a testcase for its report node, names the working
// directory as the package, and counts skips as "disabled" in one place
// and "skipped" in another.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Disabled int          `xml:"disabled,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Package    string           `xml:"package,attr"`
	Hostname   string           `xml:"hostname,attr,omitempty"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Disabled   int              `xml:"disabled,attr"`
	Time       string           `xml:"time,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	Props []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name       string           `xml:"name,attr"`
	Classname  string           `xml:"classname,attr"`
	Time       string           `xml:"time,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Skipped    *junitMessage    `xml:"skipped,omitempty"`
	Failure    *junitMessage    `xml:"failure,omitempty"`
	SystemOut  string           `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// JUnitPackage is the package of every conformance testsuite; a test
// case's classname is JUnitPackage + "." + its area (transport, fabrics,
// discovery, admin, io), so CI viewers group the checks by area.
const JUnitPackage = "nvmftest.conformance"

// WriteJUnit writes the run as JUnit XML: one testsuite per area, one
// testcase per check named "ID: title" with the requirement as
// properties (id, section, level, keyword, binds, area, needs), what it
// observed, and its traces. A skip, a check not run and an interrupted
// check are all <skipped> (type "needs", "notrun", "interrupted" tell
// them apart); counts agree between <testsuites> and its testsuites.
// traceDir is the directory the results' Traces are relative to: each
// trace is also named by its absolute path on an [[ATTACHMENT|path]] line,
// which the Jenkins and GitLab JUnit readers link.
func (s Summary) WriteJUnit(w io.Writer, traceDir string) error {
	host, _ := os.Hostname()
	by := map[string]*junitSuite{}
	var names []string
	all := junitSuites{Name: "nvmftest conformance"}
	var total time.Duration
	for _, r := range s.Results {
		js := by[r.Area]
		if js == nil {
			js = &junitSuite{Name: JUnitPackage + "." + r.Area, Package: JUnitPackage, Hostname: host}
			by[r.Area] = js
			names = append(names, r.Area)
		}
		js.Cases = append(js.Cases, junitCaseOf(r, traceDir))
		c := &js.Cases[len(js.Cases)-1]
		js.Tests++
		switch {
		case c.Failure != nil:
			js.Failures++
		case c.Skipped != nil:
			js.Skipped++
		}
		total += r.Duration
	}
	sort.Strings(names)
	v := s.Verdict()
	suiteProps := []junitProperty{{"target", s.Target}, {"subnqn", s.SubNQN}, {"verdict", v.Verdict}, {"verdict_text", v.Text}}
	if s.Profile != "" {
		suiteProps = append(suiteProps, junitProperty{"profile", s.Profile})
	}
	for _, n := range names {
		js := by[n]
		var t time.Duration
		for _, r := range s.Results {
			if r.Area == n {
				t += r.Duration
			}
		}
		js.Time = seconds(t)
		js.Properties = &junitProperties{append([]junitProperty(nil), suiteProps...)}
		all.Tests += js.Tests
		all.Failures += js.Failures
		all.Errors += js.Errors
		all.Skipped += js.Skipped
		all.Disabled += js.Disabled
		all.Suites = append(all.Suites, *js)
	}
	all.Time = seconds(total)
	if s.Interrupted != nil {
		// Where CI shows the run's name, it shows this.
		all.Name += ": " + s.Interrupted.String() + ", no verdict"
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	e := xml.NewEncoder(w)
	e.Indent("", "  ")
	if err := e.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitCaseOf is one check's testcase.
func junitCaseOf(r Result, traceDir string) junitCase {
	c := junitCase{Name: r.ID + ": " + r.Title, Classname: JUnitPackage + "." + r.Area, Time: seconds(r.Duration)}
	props := []junitProperty{{"id", r.ID}, {"section", r.Section}, {"level", string(r.Level)}}
	if r.Keyword != "" {
		props = append(props, junitProperty{"keyword", string(r.Keyword)})
	}
	if r.Binds != "" {
		props = append(props, junitProperty{"binds", string(r.Binds)})
	}
	props = append(props, junitProperty{"area", r.Area}, junitProperty{"verdict", r.Verdict()})
	if r.Needs != "" {
		props = append(props, junitProperty{"needs", r.Needs})
	}
	for _, d := range r.Details {
		props = append(props, junitProperty(d))
	}
	for _, tr := range r.Traces {
		props = append(props, junitProperty{"trace", tr})
	}
	c.Properties = &junitProperties{props}
	msg := oneLine(r.Message)
	switch r.Verdict() {
	case VerdictFail:
		c.Failure = &junitMessage{Message: msg, Type: r.State, Text: fmt.Sprintf("%s [%s, %s]\n%s", r.ID, r.Section, r.Level, r.Message)}
	case VerdictSkip:
		c.Skipped = &junitMessage{Message: msg}
		if r.Needs != "" {
			c.Skipped.Type = "needs"
		}
	case VerdictInterrupted:
		c.Skipped = &junitMessage{Message: msg, Type: StateInterrupted}
	case VerdictNotRun:
		// JUnit has no "not run": a skip that says why.
		c.Skipped = &junitMessage{Message: msg, Type: StateNotRun}
	}
	var out strings.Builder
	if r.Unreachable != "" {
		out.WriteString("target unreachable after this check: " + r.Unreachable + "\n")
	}
	for _, f := range r.Findings {
		out.WriteString(f.String() + "\n")
	}
	for _, tr := range r.Traces {
		p := filepath.FromSlash(tr)
		if traceDir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(traceDir, p)
		}
		out.WriteString("trace: " + tr + "\n[[ATTACHMENT|" + p + "]]\n")
	}
	c.SystemOut = out.String()
	return c
}

// seconds is a JUnit time: seconds with a decimal point, no grouping.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}
