package fuzz

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteReports writes the run's results into dir: fuzz.json (the
// Summary), junit.xml (one test case per unique finding, failed, and one
// for the liveness oracle that passes when there is none) and fuzz.html.
// It returns the paths written.
func WriteReports(dir string, sum *Summary) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	write := func(name string, b []byte) error {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	}
	js, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := write("fuzz.json", append(js, '\n')); err != nil {
		return paths, err
	}
	if err := write("junit.xml", junit(sum)); err != nil {
		return paths, err
	}
	var hb strings.Builder
	if err := htmlTmpl.Execute(&hb, htmlData(sum, dir)); err != nil {
		return paths, err
	}
	return paths, write("fuzz.html", []byte(hb.String()))
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Props    []junitProp `xml:"properties>property"`
	Cases    []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func junit(sum *Summary) []byte {
	s := junitSuite{Name: "nvmftest fuzz", Time: fmt.Sprintf("%.3f", sum.Elapsed.Seconds()),
		Props: []junitProp{{"target", sum.Target}, {"subnqn", sum.SubNQN}, {"seed", fmt.Sprint(sum.Seed)}, {"cases", fmt.Sprint(sum.Cases)}}}
	if len(sum.Findings) == 0 {
		s.Cases = append(s.Cases, junitCase{Name: "no finding", Classname: "fuzz",
			SystemOut: fmt.Sprintf("%d cases; the target stayed alive after each", sum.Cases)})
	}
	for _, f := range sum.Findings {
		text := fmt.Sprintf("%s\ncase %d (%s), seen %d times; replay: %s; trace: %s\n\n%s", f.Detail, f.Case, f.Origin, f.Count, f.Replay, f.Trace, f.HexDump)
		s.Cases = append(s.Cases, junitCase{Name: f.Signature, Classname: "fuzz." + f.Oracle,
			Failure: &junitFailure{Message: f.Detail, Type: f.Oracle, Text: text}})
		s.Failures++
	}
	s.Tests = len(s.Cases)
	b, _ := xml.MarshalIndent(s, "", "  ")
	return append([]byte(xml.Header), append(b, '\n')...)
}

type kv struct {
	K string
	V int
}

func sorted[K ~string](m map[K]int) []kv {
	var out []kv
	for k, v := range m {
		out = append(out, kv{string(k), v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].V > out[j].V || out[i].V == out[j].V && out[i].K < out[j].K })
	return out
}

func htmlData(sum *Summary, dir string) map[string]any {
	rel := func(p string) string {
		if r, err := filepath.Rel(dir, p); err == nil {
			return r
		}
		return p
	}
	type fd struct {
		*Finding
		ReplayRel, TraceRel string
	}
	var fs []fd
	for _, f := range sum.Findings {
		fs = append(fs, fd{f, rel(f.Replay), rel(f.Trace)})
	}
	return map[string]any{"S": sum, "Findings": fs, "Reactions": sorted(sum.Reactions), "Fields": sorted(sum.Fields),
		"Types": sorted(sum.Types), "Ops": sorted(sum.Ops)}
}

var htmlTmpl = template.Must(template.New("fuzz").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>nvmftest fuzz: {{.S.Target}}</title>
<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow:auto}td,th{padding:2px 8px;text-align:left}.bad{color:#b00}</style></head>
<body><h1>nvmftest fuzz</h1>
<p>Target {{.S.Target}} ({{.S.SubNQN}}), seed {{.S.Seed}}: {{.S.Cases}} cases in {{.S.Elapsed}}, {{len .S.Findings}} unique findings{{if .S.Interrupted}}, <b>interrupted</b>{{end}}{{if .S.Stopped}}; stopped: {{.S.Stopped}}{{end}}.</p>
<h2>Findings</h2>
{{if not .Findings}}<p>None: the target answered a fresh connection (ICReq, Connect, enable, Identify) after every case.</p>{{end}}
{{range .Findings}}<h3 class="bad">{{.Signature}}</h3>
<p>{{.Detail}}<br>First after {{.AfterCases}} cases ({{.After}}), seen {{.Count}} times; case {{.Case}} from {{.Origin}}.
{{if .Anomalies}}Malformed in the minimal case: {{range $i, $a := .Anomalies}}{{if $i}}, {{end}}{{$a}}{{end}}.<br>{{end}}
{{if .Aliases}}Also reached by: {{range $i, $a := .Aliases}}{{if $i}}; {{end}}{{$a}}{{end}}.<br>{{end}}
Minimized from {{.Steps}} PDUs / {{.Bytes}} bytes to {{.MinSteps}} / {{.MinBytes}} in {{.MinimizeRuns}} runs; reproduced: {{.Reproduced}}{{if .Flaky}} (flaky){{end}}.
{{if .ReplayRel}}<a href="{{.ReplayRel}}">replay file</a>{{end}} {{if .TraceRel}}<a href="{{.TraceRel}}">pcapng trace</a>{{end}}</p>
<pre>{{.HexDump}}</pre>{{end}}
<h2>Target reactions</h2><table>{{range .Reactions}}<tr><td>{{.K}}</td><td>{{.V}}</td></tr>{{end}}</table>
<h2>Coverage</h2><p>{{len .Fields}} of {{.S.FieldsAll}} fields set, in {{len .Types}} PDU types.</p>
<table><tr><th>mutator</th><th>times</th></tr>{{range .Ops}}<tr><td>{{.K}}</td><td>{{.V}}</td></tr>{{end}}</table>
<table><tr><th>field</th><th>times set</th></tr>{{range .Fields}}<tr><td>{{.K}}</td><td>{{.V}}</td></tr>{{end}}</table>
</body></html>
`))
