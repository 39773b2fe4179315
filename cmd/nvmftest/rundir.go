package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nvmftest/nvmftest/reports"
)

// openRun returns the run recorded in the report directory dir if there is
// one (its run.json), with this command line as its next step, so that
// conform, bench and failover can fill one directory in turn as a CI job
// runs them; otherwise a new run of this command line. Call it before the
// work, so the step is timed and a bad directory is refused at once.
func openRun(dir string) (*reports.Run, error) {
	if err := writableDir(dir); err != nil {
		return nil, usagef("--report-dir %s: %v (give a directory nvmftest can write)", dir, err)
	}
	command := append([]string{"nvmftest"}, os.Args[1:]...)
	if _, err := os.Stat(filepath.Join(dir, "run.json")); err == nil {
		r, err := reports.Load(dir)
		if err != nil {
			return nil, usagef("--report-dir %s: %v (remove it or give another directory)", dir, err)
		}
		r.Continue(command)
		return r, nil
	}
	return reports.NewRun(command), nil
}

// writableDir creates dir if missing and proves a file can be made in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".nvmftest-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// saveRun writes the run directory and says where its report is. It goes
// to stderr, which keeps stdout a clean JSON document with -o json.
func saveRun(errw io.Writer, dir string, run *reports.Run) error {
	if err := run.Write(dir); err != nil {
		return fmt.Errorf("report directory %s: %v", dir, err)
	}
	fmt.Fprintf(errw, "report: %s (summary.md, run.json beside it)\n", filepath.Join(dir, "report.html"))
	return nil
}

// createOutput creates (or truncates) the output file name of flag before
// any work, so a path that cannot be written is a usage error (exit 2)
// naming the flag, not a result lost at the end of a run.
func createOutput(flag, name string) (*os.File, error) {
	f, err := os.Create(name)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, usagef("%s %s: %v (give a file nvmftest can write)", flag, name, err)
	}
	return f, nil
}
