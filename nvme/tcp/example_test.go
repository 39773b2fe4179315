package tcp_test

import (
	"fmt"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// A controller encodes read data for the host with header and data digests;
// the host decodes it under the rules the connection negotiated.
func ExampleAppendPDU() {
	opts := tcp.EncodeOptions{Digests: tcp.Digests{Header: true, Data: true}}
	c2h := &tcp.C2HData{CCCID: 0x11, DATAL: 8, Last: true, Success: true}
	wire := tcp.AppendPDU(nil, c2h, []byte("NVMe/TCP"), opts)
	fmt.Printf("% x\n", wire)

	host := tcp.Rules{Digests: opts.Digests}
	p, ch, data, n, err := tcp.Parse(wire, &host)
	if err != nil {
		panic(err)
	}
	fmt.Println(ch)
	d := p.(*tcp.C2HData)
	fmt.Printf("cccid=%#x datal=%d last=%v success=%v data=%q consumed=%d\n", d.CCCID, d.DATAL, d.Last, d.Success, data, n)

	// A header digest error is fatal: the receiver answers with a TermReq
	// carrying FES and FEI, then closes the connection.
	wire[9] ^= 1
	_, _, _, _, err = tcp.Parse(wire, &host)
	if fe, ok := err.(*tcp.FatalError); ok {
		fmt.Println("FES", fe.FES, tcp.FESString(fe.FES))
	}

	// Output:
	// 07 0f 18 1c 28 00 00 00 11 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 e2 b5 00 18 4e 56 4d 65 2f 54 43 50 03 57 bb b8
	// C2HData flags=0x0f hlen=24 pdo=28 plen=40
	// cccid=0x11 datal=8 last=true success=true data="NVMe/TCP" consumed=40
	// FES 3 Header Digest Error
}

// A command capsule without data, as the host sends a Property Get.
func ExampleParse() {
	cmd := &tcp.CapsuleCmd{SQE: nvme.SQE{Opcode: 0x7f, Flags: nvme.PSDTSGL, CID: 1, NSID: 4, CDW10: 1}}
	wire := tcp.AppendPDU(nil, cmd, nil, tcp.EncodeOptions{})
	ctrl := tcp.Rules{Controller: true}
	p, ch, _, n, err := tcp.Parse(wire, &ctrl)
	fmt.Println(ch, n, err, p.(*tcp.CapsuleCmd).SQE.FCType())

	// The same bytes arriving at the host are the wrong direction.
	_, _, _, _, err = tcp.Parse(wire, &tcp.Rules{})
	fmt.Println(err)
	// Output:
	// CapsuleCmd flags=0x00 hlen=72 pdo=0 plen=72 72 <nil> 4
	// nvme/tcp: fatal: unexpected PDU type 0x4 (FES 0x1 Invalid PDU Header Field, FEI 0x0)
}
