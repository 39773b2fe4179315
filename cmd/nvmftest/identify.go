package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

func u128(b [16]byte) string {
	le := make([]byte, 16)
	for i := range 16 {
		le[i] = b[15-i]
	}
	return new(big.Int).SetBytes(le).String()
}

func idCtrlFields(id *nvme.IdentifyController) []kv {
	return []kv{
		{"vid", hexVal(id.VID)}, {"ssvid", hexVal(id.SSVID)}, {"sn", id.SN}, {"mn", id.MN}, {"fr", id.FR},
		{"rab", id.RAB}, {"ieee", fmt.Sprintf("%02x%02x%02x", id.IEEE[2], id.IEEE[1], id.IEEE[0])},
		{"cmic", hexVal(id.CMIC)}, {"mdts", id.MDTS}, {"cntlid", hexVal(id.CNTLID)}, {"ver", hexVal(id.VER)},
		{"oaes", hexVal(id.OAES)}, {"ctratt", hexVal(id.CTRATT)}, {"cntrltype", id.CNTRLTYPE},
		{"fguid", formatGUID(id.FGUID)},
		{"oacs", hexVal(id.OACS)}, {"acl", id.ACL}, {"aerl", id.AERL}, {"frmw", hexVal(id.FRMW)},
		{"lpa", hexVal(id.LPA)}, {"elpe", id.ELPE}, {"npss", id.NPSS}, {"avscc", hexVal(id.AVSCC)},
		{"apsta", hexVal(id.APSTA)}, {"wctemp", id.WCTEMP}, {"cctemp", id.CCTEMP}, {"mtfa", id.MTFA},
		{"hmpre", id.HMPRE}, {"hmmin", id.HMMIN}, {"tnvmcap", u128(id.TNVMCAP)}, {"unvmcap", u128(id.UNVMCAP)},
		{"rpmbs", id.RPMBS}, {"edstt", id.EDSTT}, {"dsto", id.DSTO}, {"fwug", id.FWUG}, {"kas", id.KAS},
		{"hctma", hexVal(id.HCTMA)}, {"mntmt", id.MNTMT}, {"mxtmt", id.MXTMT}, {"sanicap", hexVal(id.SANICAP)},
		{"hmminds", id.HMMINDS}, {"hmmaxd", id.HMMAXD}, {"nsetidmax", id.NVMSETIDMAX}, {"endgidmax", id.ENDGIDMAX},
		{"anatt", id.ANATT}, {"anacap", id.ANACAP}, {"anagrpmax", id.ANAGRPMAX}, {"nanagrpid", id.NANAGRPID},
		{"sqes", hexVal(id.SQES)}, {"cqes", hexVal(id.CQES)}, {"maxcmd", id.MAXCMD}, {"nn", id.NN},
		{"oncs", hexVal(id.ONCS)}, {"fuses", hexVal(id.FUSES)}, {"fna", hexVal(id.FNA)}, {"vwc", hexVal(id.VWC)},
		{"awun", id.AWUN}, {"awupf", id.AWUPF}, {"icsvscc", id.NVSCC}, {"nwpc", id.NWPC}, {"acwu", id.ACWU},
		{"sgls", hexVal(id.SGLS)}, {"mnan", id.MNAN}, {"subnqn", id.SUBNQN},
		{"ioccsz", id.IOCCSZ}, {"iorcsz", id.IORCSZ}, {"icdoff", id.ICDOFF}, {"fcatt", hexVal(id.FCATT)},
		{"msdbd", id.MSDBD}, {"ofcs", id.OFCS},
	}
}

func formatGUID(g [16]byte) string {
	if g == ([16]byte{}) {
		return "00000000-0000-0000-0000-000000000000"
	}
	h := hex.EncodeToString(g[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// identifyRaw sends Identify cns for nsid and returns the 4 KiB as the
// controller sent them, for -b/--raw-binary.
func identifyRaw(ctx context.Context, ctrl *initiator.Controller, cns uint8, nsid uint32) ([]byte, error) {
	buf := make([]byte, nvme.IdentifyDataSize)
	_, err := ctrl.Submit(ctx, ctrl.Admin(), nvme.IdentifyCmd(cns, nsid, 0), buf, initiator.FromController)
	return buf, err
}

// identifyFormat folds -b/--raw-binary and -H/--human-readable into the
// output format: "binary", "human", "normal" or "json".
func identifyFormat(f *connFlags, raw, human bool) (string, error) {
	if raw {
		f.output = "binary"
	}
	if human {
		if f.output != "normal" {
			return "", usagef("-H/--human-readable decodes the normal output: it does not go with -o %s", f.output)
		}
		return "human", nil
	}
	return f.output, nil
}

func newIDCtrlCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true, binaryOK: true}
	var raw, human bool
	c := &cobra.Command{
		Use:   "id-ctrl -t tcp -a ADDRESS -n SUBNQN [-H] [-b]",
		Short: "Send Identify Controller and show the result as nvme id-ctrl does",
		Example: `  nvmftest id-ctrl -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target
  nvmftest id-ctrl -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target -H
  nvmftest id-ctrl -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target -b > id-ctrl.bin`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if err := f.validate(); err != nil {
				return err
			}
			format, err := identifyFormat(f, raw, human)
			if err != nil {
				return err
			}
			ctrl, err := f.connect(c.Context(), -1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			b, err := identifyRaw(c.Context(), ctrl, nvme.CNSController, 0)
			if err != nil {
				return fmt.Errorf("identify controller: %v", err)
			}
			if format == "binary" {
				_, err := c.OutOrStdout().Write(b)
				return err
			}
			id := new(nvme.IdentifyController)
			if err := id.Decode(b); err != nil {
				return fmt.Errorf("identify controller: %v", err)
			}
			if format == "human" {
				printHuman(c.OutOrStdout(), "NVME Identify Controller:", idCtrlFields(id), idCtrlBits, 10)
				return nil
			}
			printFields(c.OutOrStdout(), format, "NVME Identify Controller:", idCtrlFields(id), 10)
			return nil
		},
	}
	c.Flags().BoolVarP(&human, "human-readable", "H", false, "decode the bit fields as nvme id-ctrl -H does")
	c.Flags().BoolVarP(&raw, "raw-binary", "b", false, "write the 4096 bytes to stdout as received (as -o binary)")
	addConnFlags(c, f)
	c.Flags().Lookup("output-format").Usage = "output format: normal, json or binary"
	return c
}

func newIDNSCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true, binaryOK: true}
	var nsid uint32
	var raw, human bool
	c := &cobra.Command{
		Use:   "id-ns -t tcp -a ADDRESS -n SUBNQN --nsid NSID [-H] [-b]",
		Short: "Send Identify Namespace and show the result as nvme id-ns does",
		Long: `Send Identify Namespace and show the result as nvme id-ns does.

A namespace ID that is not active gets all zeros from the controller
(NVMe Base 2.x, Identify CNS 00h): nvmftest says "namespace N is not
active" and exits 1 rather than print a structure that says nothing
(nvme-cli prints the zeros); list-ns lists the active ones.`,
		Example: `  nvmftest id-ns -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target --nsid 1
  nvmftest id-ns -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target --nsid 1 -H`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if nsid == 0 {
				return usagef("missing namespace: give it with --nsid NSID (nvme-cli's -n is the subsystem NQN here)")
			}
			if err := f.validate(); err != nil {
				return err
			}
			format, err := identifyFormat(f, raw, human)
			if err != nil {
				return err
			}
			ctrl, err := f.connect(c.Context(), -1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			b, err := identifyRaw(c.Context(), ctrl, nvme.CNSNamespace, nsid)
			if err != nil {
				return fmt.Errorf("identify namespace %d: %v", nsid, err)
			}
			if format == "binary" {
				_, err := c.OutOrStdout().Write(b)
				return err
			}
			if allZero(b) {
				return fmt.Errorf("namespace %d is not active on this controller (Identify Namespace returned zeros); `nvmftest list-ns` lists the active ones", nsid)
			}
			ns := new(nvme.IdentifyNamespace)
			if err := ns.Decode(b); err != nil {
				return fmt.Errorf("identify namespace %d: %v", nsid, err)
			}
			fields := []kv{
				{"nsze", hexVal(ns.NSZE)}, {"ncap", hexVal(ns.NCAP)}, {"nuse", hexVal(ns.NUSE)},
				{"nsfeat", hexVal(ns.NSFEAT)}, {"nlbaf", ns.NLBAF}, {"flbas", hexVal(ns.FLBAS)},
				{"mc", hexVal(ns.MC)}, {"dpc", hexVal(ns.DPC)}, {"dps", ns.DPS}, {"nmic", ns.NMIC},
				{"rescap", hexVal(ns.RESCAP)}, {"fpi", hexVal(ns.FPI)}, {"dlfeat", ns.DLFEAT},
				{"nawun", ns.NAWUN}, {"nawupf", ns.NAWUPF}, {"nacwu", ns.NACWU}, {"nabsn", ns.NABSN},
				{"nabo", ns.NABO}, {"nabspf", ns.NABSPF}, {"noiob", ns.NOIOB}, {"nvmcap", u128(ns.NVMCAP)},
				{"npwg", ns.NPWG}, {"npwa", ns.NPWA}, {"npdg", ns.NPDG}, {"npda", ns.NPDA}, {"nows", ns.NOWS},
				{"anagrpid", ns.ANAGRPID}, {"nsattr", ns.NSATTR}, {"nvmsetid", ns.NVMSETID}, {"endgid", ns.ENDGID},
				{"nguid", hex.EncodeToString(ns.NGUID[:])}, {"eui64", hex.EncodeToString(ns.EUI64[:])},
			}
			inUse := ns.LBAFIndex()
			if f.output == "json" {
				type lbafJSON struct {
					MS    uint16 `json:"ms"`
					LBADS uint8  `json:"ds"`
					RP    uint8  `json:"rp"`
				}
				var lbafs []lbafJSON
				for i := 0; i <= int(ns.NLBAF) && i < len(ns.LBAF); i++ {
					lbafs = append(lbafs, lbafJSON{ns.LBAF[i].MS, ns.LBAF[i].LBADS, ns.LBAF[i].RP})
				}
				printFields(c.OutOrStdout(), "json", "", append(fields, kv{"lbafs", lbafs}), 0)
				return nil
			}
			w := c.OutOrStdout()
			if format == "human" {
				printHuman(w, fmt.Sprintf("NVME Identify Namespace %d:", nsid), fields, idNSBits, 8)
			} else {
				printFields(w, "normal", fmt.Sprintf("NVME Identify Namespace %d:", nsid), fields, 8)
			}
			for i := 0; i <= int(ns.NLBAF) && i < len(ns.LBAF); i++ {
				l := ns.LBAF[i]
				mark := ""
				if i == inUse {
					mark = " (in use)"
				}
				fmt.Fprintf(w, "lbaf %2d : ms:%-3d lbads:%-2d rp:%#x%s\n", i, l.MS, l.LBADS, l.RP, mark)
			}
			return nil
		},
	}
	c.Flags().Uint32Var(&nsid, "nsid", 0, "namespace ID (required)")
	c.Flags().BoolVarP(&human, "human-readable", "H", false, "decode the bit fields as nvme id-ns -H does")
	c.Flags().BoolVarP(&raw, "raw-binary", "b", false, "write the 4096 bytes to stdout as received (as -o binary)")
	addConnFlags(c, f)
	c.Flags().Lookup("output-format").Usage = "output format: normal, json or binary"
	return c
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func newListNSCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true}
	c := &cobra.Command{
		Use:     "list-ns -t tcp -a ADDRESS -n SUBNQN",
		Short:   "List the active namespace IDs as nvme list-ns does",
		Example: `  nvmftest list-ns -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target`,
		Args:    noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			ctrl, err := f.connect(c.Context(), -1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			ids, err := ctrl.ActiveNamespaces(c.Context())
			if err != nil {
				return fmt.Errorf("identify active namespace list: %v", err)
			}
			w := c.OutOrStdout()
			if f.output == "json" {
				type nsj struct {
					NSID uint32 `json:"nsid"`
				}
				list := []nsj{}
				for _, id := range ids {
					list = append(list, nsj{id})
				}
				writeJSON(w, map[string]any{"nsid_list": list})
				return nil
			}
			for i, id := range ids {
				fmt.Fprintf(w, "[%4d]:%#x\n", i, id)
			}
			return nil
		},
	}
	addConnFlags(c, f)
	return c
}
