package initiator_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/target"
)

// Connect to a subsystem, write four blocks through an I/O queue and read
// them back.
func Example() {
	cfg := target.DefaultConfig()
	cfg.Listeners = []target.ListenerConfig{{Address: "127.0.0.1:0"}}
	tg, err := target.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := tg.Start(); err != nil {
		log.Fatal(err)
	}
	defer tg.Close()
	addr := tg.Addrs()[0].String()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := initiator.Connect(ctx, addr, target.DefaultSubsystemNQN, initiator.Options{NrIOQueues: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("subsystem:", c.IdentifyData().SUBNQN)

	ns, err := c.IdentifyNamespace(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	q := c.IOQueues()[0]
	data := bytes.Repeat([]byte("nvmftest"), 4*int(ns.BlockSize())/8)
	if err := q.Write(ctx, 1, 0, 4, data); err != nil {
		log.Fatal(err)
	}
	back := make([]byte, len(data))
	if err := q.Read(ctx, 1, 0, 4, back); err != nil {
		log.Fatal(err)
	}
	fmt.Println("read back equal:", bytes.Equal(back, data))
	// Output:
	// subsystem: nqn.2014-08.io.nvmftest:target
	// read back equal: true
}
