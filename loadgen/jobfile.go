package loadgen

import (
	"fmt"
	"maps"
	"strings"

	"gopkg.in/ini.v1"
)

// ParseJobFile reads a fio job file: [global] sections whose options the
// jobs after them start from, then one section per job. As in fio, a
// [global] affects only the jobs below it, and a section name given twice
// makes two jobs, run in order. Bare keys such as time_based are true.
// Options apply in order; the section name is the job name unless name=
// says otherwise. base, if set, supplies options given outside the file
// (they come first, [global] overrides them).
func ParseJobFile(data []byte, base *Job) ([]*Job, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowBooleanKeys:         true,
		AllowShadows:             false,
		AllowNonUniqueSections:   true,
		IgnoreInlineComment:      false,
		SpaceBeforeInlineComment: true,
		Insensitive:              false,
	}, data)
	if err != nil {
		return nil, fmt.Errorf("job file: %w", err)
	}
	global := base
	if global == nil {
		global = NewJob("")
	} else {
		global = global.Clone()
	}
	var jobs []*Job
	for _, s := range f.Sections() {
		name := s.Name()
		switch name {
		case ini.DefaultSection:
			if len(s.Keys()) > 0 {
				return nil, fmt.Errorf("job file: options before the first [section]: %s", strings.Join(s.KeyStrings(), ", "))
			}
			continue
		case "global":
			if err := applySection(global, s); err != nil {
				return nil, fmt.Errorf("job file [global]: %w", err)
			}
			continue
		}
		j := global.Clone()
		j.GlobalOptions = maps.Clone(global.Options)
		j.Name = name
		if err := applySection(j, s); err != nil {
			return nil, fmt.Errorf("job file [%s]: %w", name, err)
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("job file has no job sections (only [global])")
	}
	return jobs, nil
}

func applySection(j *Job, s *ini.Section) error {
	for _, k := range s.Keys() {
		if err := j.Set(k.Name(), k.Value()); err != nil {
			return err
		}
	}
	return nil
}
