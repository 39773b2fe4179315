package suites_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nvmftest/nvmftest/hostconform"
	"github.com/nvmftest/nvmftest/suites"
)

// TestCommittedProfiles keeps the profiles under fixtures/ loadable: every
// ID they name is a check of theirs (a host profile, *-host-*.yaml, names
// host checks; the others target checks), and every entry has an
// observation and a note. It is an external test because host checks live
// in hostconform, which imports suites.
func TestCommittedProfiles(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "fixtures", "profiles", "*.yaml"))
	hosts := 0
	for _, f := range files {
		load := suites.LoadProfile
		if strings.Contains(filepath.Base(f), "-host-") {
			load = hostconform.LoadProfile
			hosts++
		}
		p, err := load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if p.Name == "" || len(p.Deviations) == 0 {
			t.Errorf("%s: no name or no deviations", f)
		}
	}
	if hosts == 0 || hosts == len(files) {
		t.Fatalf("want target and host profiles under fixtures/profiles, found %d files, %d of them host profiles", len(files), hosts)
	}
}
