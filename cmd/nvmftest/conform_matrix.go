package main

import (
	"io"

	"github.com/spf13/pflag"

	"github.com/nvmftest/nvmftest/suites"
)

// matrixFlags are conform's --matrix and its -o/--output-format: the
// statement traceability matrix, built from the checks' statement IDs and
// the inventory (suites/statements.tsv). Like --list it needs no target.
type matrixFlags struct {
	on     bool
	format string
}

func (m *matrixFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&m.on, "matrix", false, "print, for every normative statement of NVMe/TCP 1.0 and the Base 2.2 Fabrics parts, the checks that cover it (or partly, not applicable, not covered) and the coverage figures, and exit")
	fs.StringVarP(&m.format, "output-format", "o", "normal", "with --matrix: normal or json")
}

// write prints the matrix in the chosen format (-o without --matrix is a
// usage error: runs have their own report formats).
func (m *matrixFlags) write(w io.Writer) error {
	if !m.on {
		return usagef("-o/--output-format applies to --matrix only")
	}
	switch m.format {
	case "normal", "text":
		return suites.WriteMatrix(w, "text")
	case "json":
		return suites.WriteMatrix(w, "json")
	}
	return usagef("invalid -o/--output-format %q: want normal or json", m.format)
}
