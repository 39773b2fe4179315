package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

// needONCS refuses an optional NVM command the controller does not
// support (ONCS bit clear), before it is sent: one line, not an Invalid
// Opcode status to decode.
func needONCS(id *nvme.IdentifyController, bit uint16, name string) error {
	if id == nil || bit == 0 || id.ONCS&bit != 0 {
		return nil
	}
	b := 0
	for bit>>b != 1 {
		b++
	}
	return fmt.Errorf("the controller does not support %s (Identify Controller ONCS bit %d is clear): nothing was sent", name, b)
}

// ioCommand connects with one I/O queue and runs do on it.
func ioCommand(ctx context.Context, f *connFlags, nsid uint32, do func(ctrl *initiator.Controller, q *initiator.Queue) error) (err error) {
	if err := f.validate(); err != nil {
		return err
	}
	if nsid == 0 {
		return usagef("invalid --nsid 0: give a namespace ID (0xffffffff: all, where the command allows it)")
	}
	ctrl, err := f.connect(ctx, 1)
	if err != nil {
		return err
	}
	defer closeCtrl(ctrl, &err)
	if len(ctrl.IOQueues()) == 0 {
		return fmt.Errorf("controller granted no I/O queues")
	}
	return do(ctrl, ctrl.IOQueues()[0])
}

func ioConnFlags() connFlags {
	return connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true, ioQueues: true}
}

func newFlushCmd() *cobra.Command {
	f := ioConnFlags()
	var nsid uint32
	c := &cobra.Command{
		Use:   "flush -t tcp -a ADDRESS -n SUBNQN [--nsid NSID]",
		Short: "Flush a namespace's volatile write cache as nvme flush does",
		Long: `Send a Flush: the controller commits the namespace's data and metadata
in a volatile write cache to non-volatile media. --nsid 0xffffffff
flushes every namespace.`,
		Example: `  nvmftest flush -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target --nsid 1`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return ioCommand(c.Context(), &f, nsid, func(_ *initiator.Controller, q *initiator.Queue) error {
				if _, err := q.Exec(c.Context(), nvme.FlushCmd(nsid), nil, initiator.FromController); err != nil {
					return fmt.Errorf("flush: %v", err)
				}
				fmt.Fprintln(c.OutOrStdout(), "NVMe Flush: success")
				return nil
			})
		},
	}
	c.Flags().Uint32Var(&nsid, "nsid", 1, "namespace ID, 0xffffffff for all (nvme-cli: -n, which is the subsystem NQN here)")
	addConnFlags(c, &f)
	return c
}

// parseList parses a comma-separated list of numbers, as nvme-cli's
// --slbs and --blocks.
func parseList(flag, s string, bits int) ([]uint64, error) {
	var out []uint64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(p), 0, bits)
		if err != nil {
			return nil, usagef("invalid %s %q: want comma-separated numbers, e.g. 0,1024", flag, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func newDSMCmd() *cobra.Command {
	f := ioConnFlags()
	var (
		nsid         uint32
		slbs, blocks string
		ad           bool
	)
	c := &cobra.Command{
		Use:   "dsm -t tcp -a ADDRESS -n SUBNQN --ad --slbs SLBA[,SLBA...] -b NLB[,NLB...]",
		Short: "Deallocate (trim) ranges of blocks as nvme dsm does",
		Long: `Send a Dataset Management command over up to 256 ranges: range i starts
at the i-th --slbs block and covers the i-th -b/--blocks blocks (a count,
not 0's based). --ad asks the controller to deallocate them (trim). Refused
before sending when the controller's ONCS says it has no Dataset
Management. nvme-cli's -s/--slbs is --slbs here (-s is the port).`,
		Example: `  nvmftest dsm -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target --ad --slbs 0,1024 -b 8,8`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if slbs == "" || blocks == "" {
				return usagef("missing ranges: give --slbs SLBA[,SLBA...] and -b/--blocks NLB[,NLB...]")
			}
			s, err := parseList("--slbs", slbs, 64)
			if err != nil {
				return err
			}
			b, err := parseList("-b/--blocks", blocks, 32)
			if err != nil {
				return err
			}
			if len(s) != len(b) || len(s) > 256 {
				return usagef("--slbs has %d ranges and -b/--blocks %d: give the same number, at most 256", len(s), len(b))
			}
			var data []byte
			for i := range s {
				r := nvme.DSMRange{SLBA: s[i], NLB: uint32(b[i])}
				data = r.Append(data)
			}
			return ioCommand(c.Context(), &f, nsid, func(ctrl *initiator.Controller, q *initiator.Queue) error {
				if err := needONCS(ctrl.IdentifyData(), nvme.ONCSDSM, "Dataset Management"); err != nil {
					return err
				}
				if _, err := q.Exec(c.Context(), nvme.DSMCmd(nsid, len(s), ad), data, initiator.ToController); err != nil {
					return fmt.Errorf("dsm: %v", err)
				}
				fmt.Fprintln(c.OutOrStdout(), "NVMe DSM: success")
				return nil
			})
		},
	}
	fs := c.Flags()
	fs.Uint32Var(&nsid, "nsid", 1, "namespace ID (nvme-cli: -n, which is the subsystem NQN here)")
	fs.StringVar(&slbs, "slbs", "", "first block of each range, comma-separated (nvme-cli: -s, which is the port here)")
	fs.StringVarP(&blocks, "blocks", "b", "", "number of blocks of each range, comma-separated")
	fs.BoolVarP(&ad, "ad", "d", false, "attribute deallocate: trim the ranges")
	addConnFlags(c, &f)
	return c
}

func newWriteZeroesCmd() *cobra.Command {
	f := ioConnFlags()
	var (
		nsid      uint32
		slba      uint64
		count     uint16
		deac, fua bool
	)
	c := &cobra.Command{
		Use:   "write-zeroes -t tcp -a ADDRESS -n SUBNQN [--nsid 1] -S SLBA -c COUNT [--deac]",
		Short: "Write zeroes to blocks as nvme write-zeroes does",
		Long: `Send a Write Zeroes of -c/--block-count+1 blocks (0's based, as nvme-cli)
at -S/--start-block; no data crosses the network. Refused before sending
when the controller's ONCS says it has no Write Zeroes.`,
		Example: `  nvmftest write-zeroes -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target -S 0 -c 63`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return ioCommand(c.Context(), &f, nsid, func(ctrl *initiator.Controller, q *initiator.Queue) error {
				if err := needONCS(ctrl.IdentifyData(), nvme.ONCSWriteZeroes, "Write Zeroes"); err != nil {
					return err
				}
				sqe := nvme.WriteZeroesCmd(nsid, slba, uint32(count)+1, deac)
				if fua {
					nvme.SetFUA(&sqe)
				}
				if _, err := q.Exec(c.Context(), sqe, nil, initiator.FromController); err != nil {
					return fmt.Errorf("write-zeroes: %v", err)
				}
				fmt.Fprintln(c.OutOrStdout(), "NVME Write Zeroes Success")
				return nil
			})
		},
	}
	fs := c.Flags()
	fs.Uint32Var(&nsid, "nsid", 1, "namespace ID (nvme-cli: -n, which is the subsystem NQN here)")
	fs.Uint64VarP(&slba, "start-block", "S", 0, "first block (nvme-cli: -s, which is the port here)")
	fs.Uint16VarP(&count, "block-count", "c", 0, "number of blocks, 0's based (0 = one block)")
	fs.BoolVarP(&deac, "deac", "d", false, "deallocate the blocks as well")
	fs.BoolVarP(&fua, "force-unit-access", "f", false, "set FUA")
	addConnFlags(c, &f)
	return c
}

func newSetFeatureCmd() *cobra.Command {
	f := connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true}
	var (
		fid   uint8
		value uint32
		nsid  uint32
		save  bool
	)
	c := &cobra.Command{
		Use:   "set-feature -t tcp -a ADDRESS -n SUBNQN -f FEATURE_ID -v VALUE [--save]",
		Short: "Set a feature as nvme set-feature does",
		Long: `Send Set Features with -v/--value in CDW11. The change lasts as long as
this command's association unless --save asks the controller to keep it
(nvme-cli: -s, which is the port here); a host command's association ends
with the command, so features the controller keeps per controller (keep
alive, async event configuration) are gone again afterwards.`,
		Example: `  nvmftest set-feature -t tcp -a 127.0.0.1 -n NQN -f 0x0b -v 0x800`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if !c.Flags().Changed("feature-id") {
				return usagef("missing feature: give it with -f/--feature-id ID")
			}
			if !c.Flags().Changed("value") {
				return usagef("missing value: give it with -v/--value VALUE")
			}
			ctrl, err := f.connect(c.Context(), -1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			v, err := ctrl.SetFeatures(c.Context(), fid, nsid, value, save, nil)
			if err != nil {
				return fmt.Errorf("set-feature %#x: %v", fid, err)
			}
			w := c.OutOrStdout()
			if f.output == "json" {
				writeJSON(w, map[string]any{"feature_id": fid, "value": value, "result": v, "save": save})
				return nil
			}
			s := 0
			if save {
				s = 1
			}
			fmt.Fprintf(w, "set-feature:0x%02x (%s), value:0x%08x, cdw12:0x00000000, save:%d\n", fid, featureName(fid), value, s)
			return nil
		},
	}
	fs := c.Flags()
	fs.Uint8VarP(&fid, "feature-id", "f", 0, "feature identifier (required)")
	fs.Uint32VarP(&value, "value", "v", 0, "new value, command dword 11 (required)")
	fs.Uint32Var(&nsid, "nsid", 0, "namespace ID, for namespace-specific features")
	fs.BoolVar(&save, "save", false, "keep the value across resets (nvme-cli: -s)")
	addConnFlags(c, &f)
	return c
}

func newListSubsysCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortDiscovery)}
	c := &cobra.Command{
		Use:   "list-subsys -t tcp -a ADDRESS [-s 8009]",
		Short: "List the subsystems a discovery controller offers, and their paths",
		Long: `List the NVM subsystems of a discovery controller's log page, each with
the ports (paths) it is reachable on, as nvme list-subsys shows the
subsystems a host is connected to. nvmftest keeps no connections, so this
is what a host could connect to, read from discovery.`,
		Example: `  nvmftest list-subsys -t tcp -a 127.0.0.1 -s 8009`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			log, err := initiator.Discover(c.Context(), f.addr(), f.options(-1))
			if err != nil {
				return fmt.Errorf("failed to discover %s: %w", f.addr(), err)
			}
			type path struct {
				Transport string `json:"transport"`
				Address   string `json:"address"`
				PortID    uint16 `json:"portid"`
			}
			type subsys struct {
				NQN   string `json:"nqn"`
				Paths []path `json:"paths"`
			}
			var list []*subsys
			byNQN := map[string]*subsys{}
			for _, e := range log.Entries {
				if e.SUBTYPE != nvme.SubtypeNVM {
					continue
				}
				s := byNQN[e.SUBNQN]
				if s == nil {
					s = &subsys{NQN: e.SUBNQN, Paths: []path{}}
					byNQN[e.SUBNQN] = s
					list = append(list, s)
				}
				s.Paths = append(s.Paths, path{name(trtypeNames, e.TRTYPE), fmt.Sprintf("traddr=%s,trsvcid=%s", e.TRADDR, e.TRSVCID), e.PORTID})
			}
			w := c.OutOrStdout()
			if f.output == "json" {
				if list == nil {
					list = []*subsys{}
				}
				writeJSON(w, map[string]any{"subsystems": list})
				return nil
			}
			for i, s := range list {
				fmt.Fprintf(w, "nvme-subsys%d - NQN=%s\n\\\n", i, s.NQN)
				for _, p := range s.Paths {
					fmt.Fprintf(w, " +- %s %s portid=%d\n", p.Transport, p.Address, p.PortID)
				}
			}
			if len(list) == 0 {
				fmt.Fprintln(w, "no NVM subsystems in the discovery log")
			}
			return nil
		},
	}
	addConnFlags(c, f)
	return c
}

func newDisconnectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "disconnect",
		Short: "Say why there is nothing to disconnect (every command disconnects when it ends)",
		Long: `nvmftest keeps no controller between commands: each host command
connects, does its work and disconnects (CC.SHN, as the Linux host does),
and 'connect --hold' disconnects when the hold ends or on Ctrl-C. So there
is nothing for disconnect to end; it accepts nvme-cli's flags (-n NQN,
-d DEVICE, ...) so scripts fail with that one line, exit status 2. A kernel
controller made with 'nvme connect' is ended with 'nvme disconnect'.`,
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" {
					return c.Help()
				}
			}
			return usagef("nothing to disconnect: nvmftest keeps no controller between commands (each one disconnects when it ends; 'connect --hold' at the end of the hold or on Ctrl-C); for a kernel controller use 'nvme disconnect'")
		},
	}
}
