package fuzz_test

import (
	"fmt"

	"github.com/nvmftest/nvmftest/fuzz"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// A case is PDUs per connection; a finding's reproducer is saved as a
// replay file and shown as a hex dump.
func ExampleNewReplayFile() {
	icreq := tcp.AppendPDU(nil, &tcp.ICReq{}, nil, tcp.EncodeOptions{})
	c := &fuzz.Case{Steps: []fuzz.Step{{Conn: 0, Bytes: icreq[:16]}}}
	rf := fuzz.NewReplayFile(c)
	fmt.Println(rf.Format, rf.Steps[0].PDU, rf.Steps[0].Hex)
	fmt.Print(fuzz.HexDump(c, 0))
	// Output:
	// nvmftest-fuzz-replay/1 ICReq 00008000800000000000000000000000
	// step 1, connection 0: ICReq, 16 bytes
	// 00000000  00 00 80 00 80 00 00 00  00 00 00 00 00 00 00 00  |................|
}

// The same seed gives the same cases: case 7 of seed 1 is always this.
func ExampleGenerate() {
	id := fuzz.Identity{SubNQN: "nqn.2014-08.org.example:sub", HostNQN: "nqn.2014-08.org.example:host"}
	a := fuzz.Generate(1, 7, nil, false, id)
	b := fuzz.Generate(1, 7, nil, false, id)
	fmt.Println(a.Describe() == b.Describe(), a.Size() == b.Size())
	// Output:
	// true true
}
