package control_test

import (
	"context"
	"fmt"

	"github.com/nvmftest/nvmftest/control"
)

// A control command sees the verb and its arguments sorted by key.
func ExampleAction_ArgList() {
	a := control.Action{Verb: "add-namespace", Args: map[string]string{"subnqn": "nqn.2014-08.io.example:s1", "size": "64MiB"}}
	fmt.Println(a.ArgList())
	// Output: [add-namespace size=64MiB subnqn=nqn.2014-08.io.example:s1]
}

// Exec runs the user's command; here echo stands in for a vendor script.
func ExampleExec_Output() {
	c, err := control.NewExec("echo array1")
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := c.Output(context.Background(), control.Action{Verb: "port-down", Args: map[string]string{"port": "2"}})
	fmt.Println(out, err)
	// Output: array1 port-down port=2 <nil>
}
