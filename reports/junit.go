package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"

	"github.com/nvmftest/nvmftest/suites"
)

// JUnit's XML as Jenkins, GitLab and GitHub test reporters read it.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes s as JUnit XML, one testsuite per area, one testcase
// per check named "ID: title"; Write uses it when suites.Run left no
// junit.xml.
func writeJUnit(w io.Writer, s *suites.Summary) error {
	by := map[string]*junitSuite{}
	var names []string
	all := junitSuites{Name: "nvmftest conformance"}
	var total float64
	for _, r := range s.Results {
		js := by[r.Area]
		if js == nil {
			js = &junitSuite{Name: r.Area}
			by[r.Area] = js
			names = append(names, r.Area)
		}
		c := junitCase{Name: r.ID + ": " + r.Title, Classname: "nvmftest." + r.Area, Time: fmt.Sprintf("%.3f", r.Duration.Seconds())}
		switch {
		case r.Failed():
			c.Failure = &junitMessage{Message: firstLine(r.Message), Type: string(r.Level), Text: fmt.Sprintf("%s [%s, %s]\n%s", r.ID, r.Section, r.Level, r.Message)}
			js.Failures++
			all.Failures++
		case r.State == "skipped":
			c.Skipped = &junitMessage{Message: firstLine(r.Message)}
			js.Skipped++
			all.Skipped++
		case r.State == suites.StateInterrupted:
			c.Skipped = &junitMessage{Message: firstLine(r.Message), Type: suites.StateInterrupted}
			js.Skipped++
			all.Skipped++
		case r.State == suites.StateNotRun:
			// JUnit has no "not run": a skip that says why.
			c.Skipped = &junitMessage{Message: firstLine(r.Message), Type: suites.StateNotRun}
			js.Skipped++
			all.Skipped++
		}
		if r.Unreachable != "" {
			c.SystemOut += "target unreachable after this check: " + r.Unreachable + "\n"
		}
		for _, f := range r.Findings {
			c.SystemOut += f.String() + "\n"
		}
		for _, tr := range r.Traces {
			c.SystemOut += "trace: " + tr + "\n"
		}
		js.Cases = append(js.Cases, c)
		js.Tests++
		all.Tests++
		total += r.Duration.Seconds()
	}
	sort.Strings(names)
	for _, n := range names {
		js := by[n]
		var t float64
		for _, r := range s.Results {
			if r.Area == n {
				t += r.Duration.Seconds()
			}
		}
		js.Time = fmt.Sprintf("%.3f", t)
		all.Suites = append(all.Suites, *js)
	}
	all.Time = fmt.Sprintf("%.3f", total)
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
