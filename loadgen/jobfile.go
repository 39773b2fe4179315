package loadgen

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// ParseOptions say where a job file comes from and where its warnings go.
type ParseOptions struct {
	// Name is the file's name in messages ("jobs.fio:12: ...") and the
	// directory relative includes are read from. "" reads includes from
	// the working directory and calls the file "job file".
	Name string
	// LookupEnv expands ${VAR} (default os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// ReadFile reads included files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Warn receives one line per option that is accepted but has no
	// effect here ("jobs.fio:3: ioengine=libaio has no effect: ...").
	// nil drops them.
	Warn func(string)
}

// JobFileError is a job file problem at a line: its Error reads
// "FILE:LINE: [section] what is wrong".
type JobFileError struct {
	File    string
	Line    int
	Section string // "" before the first section
	Err     error
}

func (e *JobFileError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	s += ": "
	if e.Section != "" {
		s += "[" + e.Section + "] "
	}
	return s + e.Err.Error()
}

func (e *JobFileError) Unwrap() error { return e.Err }

// ErrNoJobs is the error of a job file that defines no job (empty, only
// comments, or only [global]): fio says "No job(s) defined".
var ErrNoJobs = errors.New("no jobs defined")

// ParseJobFile reads a fio job file: [global] sections whose options the
// jobs after them start from, then one section per job. As in fio, a
// [global] affects only the jobs below it, and a section name given twice
// makes two jobs, run in order. Bare keys such as time_based are true.
// Options apply in order; the section name is the job name unless name=
// says otherwise. base, if set, supplies options given outside the file
// (they come first, [global] overrides them). Includes are read relative
// to the working directory; ParseJobFileWith names the file.
func ParseJobFile(data []byte, base *Job) ([]*Job, error) {
	return ParseJobFileWith(data, base, ParseOptions{})
}

// LoadJobFile reads and parses the job file at path (includes relative to
// its directory, as fio does).
func LoadJobFile(path string, base *Job, o ParseOptions) ([]*Job, error) {
	rd := o.ReadFile
	if rd == nil {
		rd = os.ReadFile
	}
	data, err := rd(path)
	if err != nil {
		return nil, err
	}
	o.Name = path
	return ParseJobFileWith(data, base, o)
}

// ParseJobFileWith is ParseJobFile with the file's name, environment and
// warnings given. It follows fio's parser (init.c, parse.c):
//   - blank lines and lines starting with ';' or '#' are skipped, and a
//     ';' or '#' ends a line's value;
//   - "include FILE" inside a section reads FILE's options (no sections
//     allowed there, nested includes are) into that section, a relative
//     FILE being relative to the including file's directory;
//   - ${VAR} in a line is the environment variable VAR, the empty string
//     when VAR is not set (fio's rule); $ncpus and $pagesize are fio's
//     reserved keywords;
//   - an option before the first [section] is an error, as is an option
//     fio has but nvmftest does not implement, and one fio does not have.
func ParseJobFileWith(data []byte, base *Job, o ParseOptions) ([]*Job, error) {
	p := &jobParser{o: o}
	if p.o.Name == "" {
		p.o.Name = "job file"
	}
	if p.o.LookupEnv == nil {
		p.o.LookupEnv = os.LookupEnv
	}
	if p.o.ReadFile == nil {
		p.o.ReadFile = os.ReadFile
	}
	p.global = NewJob("")
	if base != nil {
		p.global = base.Clone()
	}
	if err := p.parse(p.o.Name, data, 0); err != nil {
		return nil, err
	}
	p.endSection()
	if len(p.jobs) == 0 {
		why := "the file is empty or only comments"
		if p.sawGlobal {
			why = "only [global] sections"
		}
		return nil, &JobFileError{File: p.o.Name, Err: fmt.Errorf("%w: %s; a job is a [name] section", ErrNoJobs, why)}
	}
	return p.jobs, nil
}

type jobParser struct {
	o         ParseOptions
	global    *Job
	cur       *Job   // the section being read (global when in [global])
	section   string // its name
	jobs      []*Job
	sawGlobal bool
}

func (p *jobParser) endSection() {
	if p.cur != nil && p.cur != p.global {
		p.jobs = append(p.jobs, p.cur)
	}
	p.cur = nil
}

const maxIncludeDepth = 16

// parse reads the lines of one file; depth > 0 for included files.
func (p *jobParser) parse(file string, data []byte, depth int) error {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	for i, raw := range lines {
		at := func(err error) error {
			return &JobFileError{File: file, Line: i + 1, Section: p.section, Err: err}
		}
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if depth > 0 {
				return at(fmt.Errorf("section %s in an included file: fio's include files hold options only", line))
			}
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return at(fmt.Errorf("%q: a section header is [name]", line))
			}
			name := strings.TrimSpace(line[1:end])
			if name == "" {
				return at(fmt.Errorf("empty section name []"))
			}
			p.endSection()
			p.section = name
			if name == "global" {
				p.sawGlobal = true
				p.cur = p.global
			} else {
				p.cur = p.global.Clone()
				p.cur.GlobalOptions = maps.Clone(p.global.Options)
				p.cur.Name = name
			}
			continue
		}
		// fio cuts a line's value at ';' or '#' (parse.c strip_blank_end).
		if k := strings.IndexAny(line, ";#"); k >= 0 {
			line = strings.TrimSpace(line[:k])
		}
		line = p.expand(line)
		if rest, ok := strings.CutPrefix(line, "include"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			name := strings.TrimSpace(rest)
			if name == "" {
				return at(fmt.Errorf("include without a file name"))
			}
			if p.cur == nil {
				return at(fmt.Errorf("include %s before the first [section]", name))
			}
			if depth >= maxIncludeDepth {
				return at(fmt.Errorf("include %s: includes nested more than %d deep (a loop?)", name, maxIncludeDepth))
			}
			if !filepath.IsAbs(name) && file != "job file" {
				name = filepath.Join(filepath.Dir(file), name)
			}
			inc, err := p.o.ReadFile(name)
			if err != nil {
				return at(fmt.Errorf("include: %w", err))
			}
			if err := p.parse(name, inc, depth+1); err != nil {
				return err
			}
			continue
		}
		key, val, _ := strings.Cut(line, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if p.cur == nil {
			return at(fmt.Errorf("option %q outside of a [section]: options go below [global] or a [job]", line))
		}
		if strings.ContainsAny(key, " \t") {
			return at(fmt.Errorf("%q: want option=value", line))
		}
		if err := p.cur.Set(key, val); err != nil {
			return at(err)
		}
		if why := NoEffect(key); why != "" && p.o.Warn != nil {
			p.o.Warn(fmt.Sprintf("%s:%d: %s has no effect: %s", file, i+1, strings.TrimSuffix(key+"="+val, "="), why))
		}
	}
	return nil
}

// expand replaces ${VAR} and fio's $ncpus and $pagesize.
func (p *jobParser) expand(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				b.WriteString(s)
				return b.String()
			}
			v, _ := p.o.LookupEnv(s[2:end]) // unset: "" (fio's rule)
			b.WriteString(v)
			s = s[end+1:]
		case strings.HasPrefix(s, "$ncpus"):
			b.WriteString(strconv.Itoa(runtime.NumCPU()))
			s = s[len("$ncpus"):]
		case strings.HasPrefix(s, "$pagesize"):
			b.WriteString(strconv.Itoa(os.Getpagesize()))
			s = s[len("$pagesize"):]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
	return b.String()
}
