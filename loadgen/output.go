package loadgen

import (
	"fmt"
	"io"
	"strings"
)

// OutputFormat is a set of fio's output formats (--output-format).
type OutputFormat uint8

// The formats fio knows. JSONPlus includes JSON, as in fio.
const (
	FormatNormal OutputFormat = 1 << iota
	FormatTerse
	FormatJSON
	FormatJSONPlus
)

// ParseOutputFormat reads fio's --output-format: normal, terse, json or
// json+, or a comma list of them (normal,json). fio takes the names in
// lower case only and so does this.
func ParseOutputFormat(s string) (OutputFormat, error) {
	var f OutputFormat
	for _, name := range strings.Split(s, ",") {
		switch name {
		case "normal":
			f |= FormatNormal
		case "terse":
			f |= FormatTerse
		case "json":
			f |= FormatJSON
		case "json+":
			f |= FormatJSON | FormatJSONPlus
		default:
			return 0, fmt.Errorf("invalid output format %q: use normal, terse, json or json+, or a comma list of them (normal,json)", name)
		}
	}
	return f, nil
}

// Has says whether f includes g.
func (f OutputFormat) Has(g OutputFormat) bool { return f&g != 0 }

// WriteOutput writes r in every format of f, in fio's order whatever the
// order given: terse, then JSON, then normal; each reports Grouped(r).
func WriteOutput(w io.Writer, r *Result, f OutputFormat) error {
	r = Grouped(r) // once: the writers' own Grouped then has nothing to do
	if f.Has(FormatTerse) {
		if err := WriteTerse(w, r); err != nil {
			return err
		}
	}
	switch {
	case f.Has(FormatJSONPlus):
		if err := WriteFioJSONPlus(w, r); err != nil {
			return err
		}
	case f.Has(FormatJSON):
		if err := WriteFioJSON(w, r); err != nil {
			return err
		}
	}
	if f.Has(FormatNormal) {
		if f.Has(FormatTerse | FormatJSON) {
			// fio separates the normal report from the JSON before it.
			fmt.Fprintln(w)
		}
		WriteSummary(w, r)
	}
	return nil
}
