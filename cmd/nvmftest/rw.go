package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

type rwFlags struct {
	nsid   uint32
	slba   uint64
	count  uint16 // 0's based, as nvme-cli
	size   uint64
	data   string
	fua    bool
	queues connFlags
}

func addRWFlags(c *cobra.Command, f *rwFlags, write bool) {
	// Defined before the fabrics flags: -S, -c and -f are the command's.
	fs := c.Flags()
	fs.Uint32Var(&f.nsid, "nsid", 1, "namespace ID (nvme-cli: -n, which is the subsystem NQN here)")
	fs.Uint64VarP(&f.slba, "start-block", "S", 0, "64-bit address of the first block (nvme-cli: -s, which is the port here)")
	fs.Uint16VarP(&f.count, "block-count", "c", 0, "number of blocks, 0's based (0 = one block)")
	fs.Uint64VarP(&f.size, "data-size", "z", 0, "bytes to transfer (default: (block-count+1) x block size)")
	if write {
		fs.StringVarP(&f.data, "data", "d", "", "file to write from (default: stdin)")
	} else {
		fs.StringVarP(&f.data, "data", "d", "", "file to write the data to (default: hex dump on stdout)")
	}
	fs.BoolVarP(&f.fua, "force-unit-access", "f", false, "set FUA")
	addConnFlags(c, &f.queues)
}

func newReadCmd() *cobra.Command    { return newRWCmd(false, false) }
func newWriteCmd() *cobra.Command   { return newRWCmd(true, false) }
func newCompareCmd() *cobra.Command { return newRWCmd(true, true) }

// newRWCmd makes read, write or (write and compare) compare: compare
// sends its data as write does and changes nothing.
func newRWCmd(write, compare bool) *cobra.Command {
	f := &rwFlags{queues: connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true, ioQueues: true}}
	verb, short, example := "read", "Read blocks from a namespace as nvme read does",
		`  nvmftest read -t tcp -a 127.0.0.1 -n NQN --nsid 1 -S 0 -c 7 -d out.bin`
	if write {
		verb, short, example = "write", "Write blocks to a namespace as nvme write does",
			`  nvmftest write -t tcp -a 127.0.0.1 -n NQN --nsid 1 -S 0 -c 7 -d in.bin`
	}
	if compare {
		verb, short, example = "compare", "Compare blocks of a namespace with data as nvme compare does",
			`  nvmftest compare -t tcp -a 127.0.0.1 -n NQN --nsid 1 -S 0 -c 7 -d expected.bin`
	}
	c := &cobra.Command{
		Use: verb + " -t tcp -a ADDRESS -n SUBNQN [--nsid 1] [-S SLBA] [-c COUNT] [-d FILE]",
		Long: short + `.

-S is the start block here, as -s is the port: give the DH-HMAC-CHAP
secret with --dhchap-secret. -c is the block count (0's based, as
nvme-cli), -f is FUA.`,
		Short:   short,
		Example: example,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if err := f.queues.validate(); err != nil {
				return err
			}
			if f.nsid == 0 || f.nsid == 0xFFFFFFFF {
				return usagef("invalid --nsid %#x: give a single namespace", f.nsid)
			}
			var in []byte
			var dataOut *os.File
			if write {
				in, err = readInput(c, f.data)
				if err != nil {
					return err
				}
				if len(in) == 0 {
					src := "stdin"
					if f.data != "" {
						src = f.data
					}
					return usagef("%s: no data in %s: give it with -d/--data FILE or on stdin (write-zeroes writes zeros)", verb, src)
				}
			} else if f.data != "" {
				// Made before the read: a bad path is a usage error, not
				// a read whose data is lost.
				if dataOut, err = createOutput("--data", f.data); err != nil {
					return err
				}
				defer dataOut.Close()
			}
			ctrl, err := f.queues.connect(c.Context(), 1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			if len(ctrl.IOQueues()) == 0 {
				return fmt.Errorf("controller granted no I/O queues")
			}
			ns, err := ctrl.IdentifyNamespace(c.Context(), f.nsid)
			if err != nil {
				return fmt.Errorf("identify namespace %d: %v", f.nsid, err)
			}
			bs := uint64(ns.BlockSize())
			nlb := uint32(f.count) + 1
			need := uint64(nlb) * bs
			size := f.size
			if size == 0 {
				size = need
			}
			if size < need {
				return usagef("-z/--data-size %d is smaller than %d blocks of %d bytes (%d)", size, nlb, bs, need)
			}
			if mx := ctrl.MaxTransferSize(); mx > 0 && need > uint64(mx) {
				return usagef("%d bytes exceed the controller's maximum transfer of %d (MDTS): lower -c/--block-count", need, mx)
			}
			buf := make([]byte, need)
			q := ctrl.IOQueues()[0]
			sqe := nvme.ReadCmd(f.nsid, f.slba, nlb)
			if write {
				sqe = nvme.WriteCmd(f.nsid, f.slba, nlb)
				copy(buf, in)
				if uint64(len(in)) < need {
					fmt.Fprintf(c.ErrOrStderr(), "%s: %d bytes of data padded with zeros to %d (%d blocks)\n", verb, len(in), need, nlb)
				}
			}
			if compare {
				if err := needONCS(ctrl.IdentifyData(), nvme.ONCSCompare, "Compare"); err != nil {
					return err
				}
				sqe = nvme.CompareCmd(f.nsid, f.slba, nlb)
			}
			if f.fua {
				nvme.SetFUA(&sqe)
			}
			dir := initiator.FromController
			if write {
				dir = initiator.ToController
			}
			if _, err := q.Exec(c.Context(), sqe, buf, dir); err != nil {
				return fmt.Errorf("%s: %v", verb, err)
			}
			if !write {
				if f.data != "" {
					if _, err := dataOut.Write(buf); err != nil {
						return fmt.Errorf("write %s: %v", f.data, err)
					}
					if err := dataOut.Close(); err != nil {
						return fmt.Errorf("write %s: %v", f.data, err)
					}
				} else if f.queues.output == "json" {
					writeJSON(c.OutOrStdout(), map[string]any{"nsid": f.nsid, "slba": f.slba, "nlb": nlb, "data": buf})
				} else {
					hexDump(c.OutOrStdout(), buf)
				}
			}
			fmt.Fprintf(c.ErrOrStderr(), "%s: Success\n", verb)
			return nil
		},
	}
	addRWFlags(c, f, write)
	return c
}

func readInput(c *cobra.Command, path string) ([]byte, error) {
	if path == "" {
		b, err := io.ReadAll(c.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read stdin: %v", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read -d/--data file: %v", err)
	}
	return b, nil
}

func newGetFeatureCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true}
	var (
		fid    uint8
		sel    uint8
		cdw11  uint32
		nsid   uint32
		length uint32
	)
	c := &cobra.Command{
		Use:     "get-feature -t tcp -a ADDRESS -n SUBNQN -f FEATURE_ID",
		Short:   "Read a feature as nvme get-feature does",
		Example: `  nvmftest get-feature -t tcp -a 127.0.0.1 -n NQN -f 7`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if !c.Flags().Changed("feature-id") {
				return usagef("missing feature: give it with -f/--feature-id ID")
			}
			if sel > 3 {
				return usagef("invalid --sel %d: 0 current, 1 default, 2 saved, 3 supported capabilities", sel)
			}
			ctrl, err := f.connect(c.Context(), -1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			var data []byte
			if length > 0 {
				data = make([]byte, length)
			}
			v, err := ctrl.GetFeatures(c.Context(), fid, nsid, sel, cdw11, data)
			if err != nil {
				return fmt.Errorf("get-feature %#x: %v", fid, err)
			}
			w := c.OutOrStdout()
			selName := []string{"Current", "Default", "Saved", "Supported capabilities"}[sel]
			if f.output == "json" {
				writeJSON(w, map[string]any{"feature_id": fid, "sel": sel, "value": v, "data": data})
				return nil
			}
			fmt.Fprintf(w, "get-feature:0x%02x (%s), %s value:0x%08x\n", fid, featureName(fid), selName, v)
			if fid == nvme.FeatNumQueues {
				nsq, ncq := nvme.DecodeNumQueues(v)
				fmt.Fprintf(w, "\tNumber of IO Completion Queues Allocated (NCQA): %d\n", ncq)
				fmt.Fprintf(w, "\tNumber of IO Submission Queues Allocated (NSQA): %d\n", nsq)
			}
			if len(data) > 0 {
				hexDump(w, data)
			}
			return nil
		},
	}
	fs := c.Flags()
	fs.Uint8VarP(&fid, "feature-id", "f", 0, "feature identifier (required)")
	fs.Uint8Var(&sel, "sel", 0, "select: 0 current, 1 default, 2 saved, 3 supported capabilities (nvme-cli: -s)")
	fs.Uint32Var(&cdw11, "cdw11", 0, "command dword 11")
	fs.Uint32Var(&nsid, "nsid", 0, "namespace ID")
	fs.Uint32VarP(&length, "data-len", "l", 0, "bytes of feature data to read")
	addConnFlags(c, f)
	return c
}

func featureName(fid uint8) string {
	switch fid {
	case nvme.FeatArbitration:
		return "Arbitration"
	case nvme.FeatPowerManagement:
		return "Power Management"
	case nvme.FeatTemperatureThresh:
		return "Temperature Threshold"
	case nvme.FeatErrorRecovery:
		return "Error Recovery"
	case nvme.FeatVolatileWC:
		return "Volatile Write Cache"
	case nvme.FeatNumQueues:
		return "Number of Queues"
	case nvme.FeatIRQCoalescing:
		return "Interrupt Coalescing"
	case nvme.FeatWriteAtomicity:
		return "Write Atomicity Normal"
	case nvme.FeatAsyncEventConfig:
		return "Async Event Configuration"
	case nvme.FeatKeepAliveTimer:
		return "Keep Alive Timer"
	case nvme.FeatHostIdentifier:
		return "Host Identifier"
	}
	return "Unknown"
}
