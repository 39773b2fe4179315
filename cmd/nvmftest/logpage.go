package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/nvme"
)

// logDefaultLen is the length read when --log-len is not given.
var logDefaultLen = map[uint8]uint32{
	nvme.LogError:           64 * 64,
	nvme.LogSMART:           512,
	nvme.LogFirmwareSlot:    512,
	nvme.LogChangedNSList:   4096,
	nvme.LogCommandsEffects: 4096,
	nvme.LogANA:             4096,
	nvme.LogDiscovery:       4096,
}

func newGetLogCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true, binaryOK: true}
	var (
		lid    uint8
		length uint32
		lsp    uint8
		lpo    uint64
		nsid   uint32
		raw    bool
	)
	c := &cobra.Command{
		Use:   "get-log -t tcp -a ADDRESS -n SUBNQN -i LOG_ID [-l LEN]",
		Short: "Read a log page: decoded for known pages, else a hex dump",
		Long: `Read a log page. Known pages are decoded: error (1), smart (2), fw (3),
changed namespaces (4), commands supported and effects (5), ANA (0xc) and
discovery (0x70). Others are dumped in hex as nvme-cli does;
-b/--raw-binary (or -o binary) writes any page to stdout as received.
A -l/--log-len above the controller's maximum transfer (MDTS) is read in
MDTS-sized pieces.`,
		Example: `  nvmftest get-log -t tcp -a 127.0.0.1 -n NQN -i 2
  nvmftest get-log -t tcp -a 127.0.0.1 -s 8009 -n nqn.2014-08.org.nvmexpress.discovery -i 0x70 -l 2048
  nvmftest get-log -t tcp -a 127.0.0.1 -n NQN -i 0xc0 -l 512 -b > page.bin`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if !c.Flags().Changed("log-id") {
				return usagef("missing log page: give it with -i/--log-id ID")
			}
			if length == 0 {
				length = logDefaultLen[lid]
				if length == 0 {
					return usagef("log page %#x has no default length: give it with -l/--log-len BYTES", lid)
				}
			}
			if length%4 != 0 {
				return usagef("invalid -l/--log-len %d: must be a multiple of 4", length)
			}
			if nsid == 0 {
				nsid = 0xFFFFFFFF
				if lid == nvme.LogDiscovery || lid == nvme.LogANA || lid == nvme.LogChangedNSList || lid == nvme.LogCommandsEffects || lid == nvme.LogError || lid == nvme.LogFirmwareSlot {
					nsid = 0
				}
			}
			ctrl, err := f.connect(c.Context(), -1)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			// A length above MDTS is read in MDTS-sized pieces (with
			// increasing offsets, as nvme-cli's --xfer-len), so it needs
			// no refusal; a length past the end of the page does.
			buf := make([]byte, length)
			if err := ctrl.GetLogPage(c.Context(), lid, nsid, lsp, lpo, buf); err != nil {
				var st nvme.Status
				if usual := logDefaultLen[lid]; usual > 0 && uint64(length)+lpo > uint64(usual) && errors.As(err, &st) && st.Code() == nvme.StatusInvalidField {
					return fmt.Errorf("get log page %#x: %v: -l/--log-len %d (from --lpo %d) reads past the end of the page, %d bytes: lower it", lid, err, length, lpo, usual)
				}
				return fmt.Errorf("get log page %#x: %v", lid, err)
			}
			w := c.OutOrStdout()
			if raw || f.output == "binary" {
				_, err := w.Write(buf)
				return err
			}
			return printLog(w, f.output, lid, nsid, buf)
		},
	}
	fs := c.Flags()
	fs.Uint8VarP(&lid, "log-id", "i", 0, "log page identifier (required)")
	fs.Uint32VarP(&length, "log-len", "l", 0, "bytes to read (default: the page's usual size)")
	fs.Uint8Var(&lsp, "lsp", 0, "log specific field")
	fs.Uint64Var(&lpo, "lpo", 0, "log page offset in bytes")
	fs.Uint32Var(&nsid, "nsid", 0, "namespace ID (default 0xffffffff, or 0 for controller pages)")
	fs.BoolVarP(&raw, "raw-binary", "b", false, "write the page to stdout as binary")
	addConnFlags(c, f)
	c.Flags().Lookup("output-format").Usage = "output format: normal, json or binary"
	return c
}

func printLog(w io.Writer, format string, lid uint8, nsid uint32, b []byte) error {
	if format == "json" {
		if v := decodeLog(lid, b); v != nil {
			writeJSON(w, v)
			return nil
		}
		writeJSON(w, map[string]any{"log_id": lid, "nsid": nsid, "data": b})
		return nil
	}
	switch lid {
	case nvme.LogError:
		for i := 0; i+nvme.ErrorLogEntrySize <= len(b); i += nvme.ErrorLogEntrySize {
			var e nvme.ErrorLogEntry
			_ = e.Decode(b[i:])
			if e.ErrorCount == 0 {
				continue
			}
			fmt.Fprintf(w, " Entry[%2d]\n.................\n", i/nvme.ErrorLogEntrySize)
			printFields(w, "normal", "", []kv{
				{"error_count", e.ErrorCount}, {"sqid", e.SQID}, {"cmdid", hexVal(e.CID)},
				{"status_field", fmt.Sprintf("%#x (%v)", uint16(e.Status), e.Status)},
				{"parm_err_loc", hexVal(e.ParamErrorLocation)}, {"lba", hexVal(e.LBA)}, {"nsid", hexVal(e.NSID)},
				{"vs", e.VSIA}, {"trtype", e.TRTYPE}, {"cs", hexVal(e.CommandSpecific)}, {"trtype_spec_info", e.TTSI},
			}, 16)
		}
		fmt.Fprintln(w, "Error Log Entries for the controller: done")
		return nil
	case nvme.LogSMART:
		var l nvme.SMARTLog
		if err := l.Decode(b); err != nil {
			break
		}
		printFields(w, "normal", fmt.Sprintf("Smart Log for NVME device namespace-id:%x", nsid), smartFields(&l), 38)
		return nil
	case nvme.LogFirmwareSlot:
		var l nvme.FirmwareSlotLog
		if err := l.Decode(b); err != nil {
			break
		}
		fmt.Fprintln(w, "Firmware Log for device")
		fmt.Fprintf(w, "afi  : %#x\n", l.AFI)
		for i, s := range l.FRS {
			if s != "" {
				fmt.Fprintf(w, "frs%d : %s\n", i+1, s)
			}
		}
		return nil
	case nvme.LogChangedNSList:
		fmt.Fprintln(w, "Changed Namespace List Log:")
		ids := nvme.DecodeChangedNSList(b)
		if len(ids) == 0 {
			fmt.Fprintln(w, "No changed namespaces")
		}
		for _, id := range ids {
			fmt.Fprintf(w, "[%4d]:%#x\n", id, id)
		}
		return nil
	case nvme.LogCommandsEffects:
		var l nvme.CommandsEffectsLog
		if err := l.Decode(b); err != nil {
			break
		}
		fmt.Fprintln(w, "Admin Command Set")
		for opc, v := range l.ACS {
			if v&nvme.CmdEffectsCSUPP != 0 {
				fmt.Fprintf(w, "ACS%-6d[%-32s] %08x\n", opc, nvme.OpcodeName(true, uint8(opc)), v)
			}
		}
		fmt.Fprintln(w, "\nNVM Command Set")
		for opc, v := range l.IOCS {
			if v&nvme.CmdEffectsCSUPP != 0 {
				fmt.Fprintf(w, "IOCS%-5d[%-32s] %08x\n", opc, nvme.OpcodeName(false, uint8(opc)), v)
			}
		}
		return nil
	case nvme.LogANA:
		l, err := nvme.DecodeANALog(b)
		if err != nil {
			break
		}
		fmt.Fprintln(w, "Asymmetric Namespace Access Log for NVMe device")
		fmt.Fprintf(w, "chgcnt\t:\t%d\nngrps\t:\t%d\n", l.CHGCNT, len(l.Groups))
		for _, g := range l.Groups {
			fmt.Fprintf(w, "grpid\t:\t%d\nnnsids\t:\t%d\nchgcnt\t:\t%d\nstate\t:\t%s\n", g.ANAGRPID, len(g.NSIDs), g.CHGCNT, nvme.ANAStateString(g.State&0xF))
			for _, id := range g.NSIDs {
				fmt.Fprintf(w, "\tnsid\t:\t%d\n", id)
			}
		}
		return nil
	case nvme.LogDiscovery:
		l, err := nvme.DecodeDiscoveryLog(b)
		if err != nil {
			break
		}
		printDiscoveryLog(w, l)
		return nil
	}
	fmt.Fprintf(w, "log-id:%#x namespace-id:%#x\n", lid, nsid)
	hexDump(w, b)
	return nil
}

func smartFields(l *nvme.SMARTLog) []kv {
	return []kv{
		{"critical_warning", hexVal(l.CriticalWarning)},
		{"temperature", fmt.Sprintf("%d °C (%d K)", int(l.CompositeTemperature)-273, l.CompositeTemperature)},
		{"available_spare", fmt.Sprintf("%d%%", l.AvailableSpare)},
		{"available_spare_threshold", fmt.Sprintf("%d%%", l.AvailableSpareThreshold)},
		{"percentage_used", fmt.Sprintf("%d%%", l.PercentageUsed)},
		{"endurance group critical warning summary", hexVal(l.EnduranceGroupCW)},
		{"Data Units Read", l.DataUnitsRead}, {"Data Units Written", l.DataUnitsWritten},
		{"host_read_commands", l.HostReadCommands}, {"host_write_commands", l.HostWriteCommands},
		{"controller_busy_time", l.ControllerBusyTime}, {"power_cycles", l.PowerCycles},
		{"power_on_hours", l.PowerOnHours}, {"unsafe_shutdowns", l.UnsafeShutdowns},
		{"media_errors", l.MediaErrors}, {"num_err_log_entries", l.NumErrLogEntries},
		{"Warning Temperature Time", l.WarningTempTime}, {"Critical Composite Temperature Time", l.CriticalCompTime},
	}
}

// decodeLog returns a JSON-able decoding of a known page, or nil.
func decodeLog(lid uint8, b []byte) any {
	switch lid {
	case nvme.LogError:
		var out []nvme.ErrorLogEntry
		for i := 0; i+nvme.ErrorLogEntrySize <= len(b); i += nvme.ErrorLogEntrySize {
			var e nvme.ErrorLogEntry
			if e.Decode(b[i:]) == nil && e.ErrorCount != 0 {
				out = append(out, e)
			}
		}
		return map[string]any{"errors": out}
	case nvme.LogSMART:
		var l nvme.SMARTLog
		if l.Decode(b) == nil {
			return l
		}
	case nvme.LogFirmwareSlot:
		var l nvme.FirmwareSlotLog
		if l.Decode(b) == nil {
			return l
		}
	case nvme.LogChangedNSList:
		return map[string]any{"changed_ns_list": nvme.DecodeChangedNSList(b)}
	case nvme.LogCommandsEffects:
		var l nvme.CommandsEffectsLog
		if l.Decode(b) == nil {
			return l
		}
	case nvme.LogANA:
		if l, err := nvme.DecodeANALog(b); err == nil {
			return l
		}
	case nvme.LogDiscovery:
		if l, err := nvme.DecodeDiscoveryLog(b); err == nil {
			return discoveryJSON(l)
		}
	}
	return nil
}
