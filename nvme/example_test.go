package nvme_test

import (
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
)

// Build the admin queue Connect capsule a host sends first: the 64-byte
// SQE followed by 1024 bytes of in-capsule Connect data.
func ExampleConnect_SQE() {
	c := nvme.Connect{QID: 0, SQSIZE: 31, KATO: 5000}
	sqe := c.SQE(0)
	data := nvme.ConnectData{
		CNTLID:  nvme.CNTLIDDynamic,
		SubNQN:  "nqn.2026-11.io.example:disk0",
		HostNQN: "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000c0de",
	}
	capsule := sqe.Append(nil)
	capsule = data.Append(capsule)

	fmt.Println(len(capsule), "bytes:", nvme.CommandName(true, &sqe))
	for i := 0; i < nvme.SQESize; i += 16 {
		fmt.Printf("%02x: % x\n", i, capsule[i:i+16])
	}
	fmt.Printf("%+v\n", nvme.DecodeConnect(&sqe))
	// Output:
	// 1088 bytes: Connect
	// 00: 7f 40 00 00 01 00 00 00 00 00 00 00 00 00 00 00
	// 10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
	// 20: 00 04 00 00 00 00 00 01 00 00 00 00 1f 00 00 00
	// 30: 88 13 00 00 00 00 00 00 00 00 00 00 00 00 00 00
	// {RECFMT:0 QID:0 SQSIZE:31 CATTR:0 KATO:5000}
}

// Read the ANA state of each group from an ANA log page.
func ExampleDecodeANALog() {
	log := nvme.ANALog{CHGCNT: 7, Groups: []nvme.ANAGroupDescriptor{
		{ANAGRPID: 1, State: nvme.ANAOptimized, NSIDs: []uint32{1, 2}},
		{ANAGRPID: 2, State: nvme.ANAInaccessible, NSIDs: []uint32{3}},
	}}
	page := log.Append(nil, false)

	l, err := nvme.DecodeANALog(page)
	if err != nil {
		panic(err)
	}
	for _, g := range l.Groups {
		fmt.Printf("group %d %s: %v\n", g.ANAGRPID, nvme.ANAStateString(g.State), g.NSIDs)
	}
	// Output:
	// group 1 optimized: [1 2]
	// group 2 inaccessible: [3]
}
