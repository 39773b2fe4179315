package suites

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"go.yaml.in/yaml/v3"
)

// Profile states where a particular implementation departs from the spec,
// requirement by requirement, so the suite can tell a known divergence
// (a finding) from a new failure.
//
//	name: linux-nvmet-6.12
//	description: Linux 6.12 nvmet-tcp with a block-device namespace
//	deviations:
//	  TCP-PDU-001:
//	    observed: close without C2HTermReq
//	    note: nvmet closes the socket on fatal errors (nvmet_tcp_fatal_error)
type Profile struct {
	Name        string               `yaml:"name"`
	Description string               `yaml:"description"`
	Deviations  map[string]Deviation `yaml:"deviations"`
}

// Deviation is what a target does instead of what a requirement says.
type Deviation struct {
	// Observed is the observation, in the check's canonical words, that
	// the target is known to produce.
	Observed string `yaml:"observed"`
	// Note explains it (where in the implementation, and why).
	Note string `yaml:"note"`
}

func (p *Profile) deviation(id string) (Deviation, bool) { return p.Deviation(id) }

// Deviation returns what the profile says of check id, if anything (a nil
// profile says nothing).
func (p *Profile) Deviation(id string) (Deviation, bool) {
	if p == nil {
		return Deviation{}, false
	}
	d, ok := p.Deviations[id]
	return d, ok
}

// Unobserved returns, sorted, the profile's deviations that a complete run
// did not report as findings: the target conforms there now (or the
// check was skipped), so the entry no longer describes it. A run with a
// label filter cannot tell; callers ask only of complete runs.
func (p *Profile) Unobserved(s Summary) []string {
	if p == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, f := range s.Findings {
		seen[f.ID] = true
	}
	var out []string
	for id := range p.Deviations {
		if !seen[id] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// ParseProfile reads a profile; unknown keys and requirement IDs that no
// check declares are errors, so a typo cannot silently excuse nothing.
func ParseProfile(data []byte) (*Profile, error) {
	var ids []string
	for _, r := range Requirements() {
		ids = append(ids, r.ID)
	}
	return ParseProfileFor(data, ids, "nvmftest conform --list")
}

// ParseProfileFor is ParseProfile for another set of checks (host
// conformance's): known are their IDs, and list is the command that lists
// them, for the error message.
func ParseProfileFor(data []byte, known []string, list string) (*Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("profile: %v", err)
	}
	ids := map[string]bool{}
	for _, id := range known {
		ids[id] = true
	}
	for id, d := range p.Deviations {
		if !ids[id] {
			return nil, fmt.Errorf("profile %q: deviations.%s: no check has this ID (see `%s`)", p.Name, id, list)
		}
		if d.Observed == "" || d.Note == "" {
			return nil, fmt.Errorf("profile %q: deviations.%s: needs both observed and note", p.Name, id)
		}
	}
	return &p, nil
}

// LoadProfile reads a profile file.
func LoadProfile(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return ParseProfile(data)
}
