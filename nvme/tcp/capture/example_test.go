package capture_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/nvmftest/nvmftest/nvme/tcp/capture"
)

// Record a host's connection into one pcapng file, note an event in the
// trace, and count the PDUs that crossed it. Open the file in Wireshark, or
// run: tshark -r host.pcapng -d tcp.port==4420,nvme-tcp
func Example() {
	dir, _ := os.MkdirTemp("", "capture-example")
	defer os.RemoveAll(dir)
	f, err := capture.CreateFile(filepath.Join(dir, "host.pcapng"), "nvmftest example")
	if err != nil {
		panic(err)
	}
	defer f.Close()

	host, target := net.Pipe() // a real net.Dial works the same way
	nc := f.Record(host, true, "nvmftest host: admin queue")
	go func() {
		// The target reads the 128-byte ICReq and answers with an ICResp.
		_, _ = io.ReadFull(target, make([]byte, 128))
		icresp := make([]byte, 128)
		icresp[0], icresp[2], icresp[4] = 0x01, 128, 128
		_, _ = target.Write(icresp)
	}()
	icreq := make([]byte, 128)
	icreq[0], icreq[2], icreq[4] = 0x00, 128, 128 // type ICReq, HLEN, PLEN
	_, _ = nc.Write(icreq)
	capture.Annotate(nc, "the ICResp follows")
	_, _ = io.ReadFull(nc, make([]byte, 128))
	nc.Close()

	sent, received := nc.(*capture.Conn).PDUs()
	fmt.Println("PDUs sent:", sent, "received:", received)
	// Output: PDUs sent: 1 received: 1
}
