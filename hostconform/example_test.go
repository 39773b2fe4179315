package hostconform_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nvmftest/nvmftest/hostconform"
	"github.com/nvmftest/nvmftest/initiator"
)

// Grade nvmftest's own initiator on two host checks. Against another
// host, Control is a control.Exec running a host control script (or
// hostconform.Attended, which prints the nvme connect line to run).
func Example() {
	host := &hostconform.SelfHost{Options: initiator.Options{Timeout: 10 * time.Second}}
	defer host.Close()
	cfg := hostconform.Config{Listen: "127.0.0.1:0", Control: host}
	sum, err := hostconform.Run(context.Background(), cfg, nil, hostconform.RunOptions{Only: []string{"HOST-IC-001", "HOST-CONN-004"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range sum.Results {
		fmt.Println(r.ID, r.Level, r.Verdict())
	}
	fmt.Println(sum.Verdict().Verdict)
	// Output:
	// HOST-CONN-004 mandatory pass
	// HOST-IC-001 mandatory pass
	// conformant
}
