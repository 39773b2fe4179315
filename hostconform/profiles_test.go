package hostconform

import (
	"path/filepath"
	"testing"
)

// TestCommittedHostProfiles keeps the host profiles under fixtures/
// (*-host-*.yaml) loadable: every ID they name is a host check, and every
// entry has an observation and a note. suites' TestCommittedProfiles
// loads the target profiles beside them.
func TestCommittedHostProfiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "fixtures", "profiles", "*-host-*.yaml"))
	if len(files) == 0 {
		t.Fatal("no host profiles under fixtures/profiles")
	}
	for _, f := range files {
		p, err := LoadProfile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if p.Name == "" || len(p.Deviations) == 0 {
			t.Errorf("%s: no name or no deviations", f)
		}
	}
}
