package main

import (
	"fmt"
	"io"
)

// bits is one bit field of an Identify field, as nvme-cli -H prints it:
// [hi:lo], the value, and what it means (on for a set single bit, off
// for a clear one; a wider field prints its value with on as the label).
type bits struct {
	hi, lo  uint
	on, off string
}

// idCtrlBits decodes the main Identify Controller bit fields (NVMe Base
// 2.x figure 313), the ones nvme id-ctrl -H shows first.
var idCtrlBits = map[string][]bits{
	"cmic": {
		{3, 3, "ANA Reporting supported", "ANA Reporting not supported"},
		{2, 2, "SR-IOV Virtual Function", "PCI Function"},
		{1, 1, "Multi Controller", "Single Controller"},
		{0, 0, "Multi Port", "Single Port"},
	},
	"oaes": {
		{31, 31, "Discovery Log Page Change Notice supported", "Discovery Log Page Change Notice not supported"},
		{11, 11, "ANA Change Notice supported", "ANA Change Notice not supported"},
		{9, 9, "Firmware Activation Notices supported", "Firmware Activation Notices not supported"},
		{8, 8, "Namespace Attribute Changed Event supported", "Namespace Attribute Changed Event not supported"},
	},
	"ctratt": {
		{7, 7, "Namespace Granularity supported", "Namespace Granularity not supported"},
		{4, 4, "Endurance Groups supported", "Endurance Groups not supported"},
		{1, 1, "Non-Operational Power State Permissive Mode supported", "Non-Operational Power State Permissive Mode not supported"},
		{0, 0, "128-bit Host Identifier supported", "128-bit Host Identifier not supported"},
	},
	"oacs": {
		{9, 9, "Get LBA Status Capability supported", "Get LBA Status Capability not supported"},
		{8, 8, "Doorbell Buffer Config supported", "Doorbell Buffer Config not supported"},
		{7, 7, "Virtualization Management supported", "Virtualization Management not supported"},
		{6, 6, "NVMe-MI Send and Receive supported", "NVMe-MI Send and Receive not supported"},
		{5, 5, "Directives supported", "Directives not supported"},
		{4, 4, "Device Self-test supported", "Device Self-test not supported"},
		{3, 3, "NS Management and Attachment supported", "NS Management and Attachment not supported"},
		{2, 2, "FW Commit and Download supported", "FW Commit and Download not supported"},
		{1, 1, "Format NVM supported", "Format NVM not supported"},
		{0, 0, "Security Send and Receive supported", "Security Send and Receive not supported"},
	},
	"lpa": {
		{4, 4, "Persistent Event log supported", "Persistent Event log not supported"},
		{3, 3, "Telemetry host/controller initiated log pages supported", "Telemetry host/controller initiated log pages not supported"},
		{2, 2, "Extended data for Get Log Page supported", "Extended data for Get Log Page not supported"},
		{1, 1, "Command Effects Log Page supported", "Command Effects Log Page not supported"},
		{0, 0, "SMART/Health Log Page per NS supported", "SMART/Health Log Page per NS not supported"},
	},
	"sqes": {{7, 4, "Max SQ Entry Size (2^n bytes)", ""}, {3, 0, "Min SQ Entry Size (2^n bytes)", ""}},
	"cqes": {{7, 4, "Max CQ Entry Size (2^n bytes)", ""}, {3, 0, "Min CQ Entry Size (2^n bytes)", ""}},
	"oncs": {
		{8, 8, "Verify Supported", "Verify Not Supported"},
		{7, 7, "Namespace Zeroes supported", "Namespace Zeroes not supported"},
		{6, 6, "Timestamp Supported", "Timestamp Not Supported"},
		{5, 5, "Reservations Supported", "Reservations Not Supported"},
		{4, 4, "Save and Select Supported", "Save and Select Not Supported"},
		{3, 3, "Write Zeroes Supported", "Write Zeroes Not Supported"},
		{2, 2, "Data Set Management Supported", "Data Set Management Not Supported"},
		{1, 1, "Write Uncorrectable Supported", "Write Uncorrectable Not Supported"},
		{0, 0, "Compare Supported", "Compare Not Supported"},
	},
	"fuses": {{0, 0, "Fused Compare and Write Supported", "Fused Compare and Write Not Supported"}},
	"fna": {
		{2, 2, "Crypto Erase Supported as part of Secure Erase", "Crypto Erase Not Supported as part of Secure Erase"},
		{1, 1, "Crypto Erase Applies to All Namespace(s)", "Crypto Erase Applies to Single Namespace(s)"},
		{0, 0, "Format Applies to All Namespace(s)", "Format Applies to Single Namespace(s)"},
	},
	"vwc": {
		{2, 1, "Flush with NSID FFFFFFFFh: 0 not reported, 2 not supported, 3 supported", ""},
		{0, 0, "Volatile Write Cache Present", "Volatile Write Cache Not Present"},
	},
	"sgls": {
		{20, 20, "SGL Address Offsets Supported", "SGL Address Offsets Not Supported"},
		{2, 2, "Keyed SGL Data Block descriptor Supported", "Keyed SGL Data Block descriptor Not Supported"},
		{1, 0, "SGL Supported (1: byte aligned, 2: dword aligned)", ""},
	},
}

// idNSBits decodes the main Identify Namespace bit fields (NVM Command
// Set 1.0 figure 97).
var idNSBits = map[string][]bits{
	"nsfeat": {
		{4, 4, "NPWG, NPWA, NPDG, NPDA, and NOWS are Supported", "NPWG, NPWA, NPDG, NPDA, and NOWS are Not Supported"},
		{3, 3, "NGUID and EUI64 fields if non-zero, Never Reused", "NGUID and EUI64 fields if non-zero, Reused"},
		{2, 2, "Deallocated or Unwritten Logical Block error Supported", "Deallocated or Unwritten Logical Block error Not Supported"},
		{1, 1, "Namespace uses NAWUN, NAWUPF, and NACWU", "Namespace uses AWUN, AWUPF, and ACWU"},
		{0, 0, "Thin Provisioning Supported", "Thin Provisioning Not Supported"},
	},
	"flbas": {
		{4, 4, "Metadata Transferred at End of Data LBA", "Metadata Transferred in Separate Contiguous Buffer"},
		{3, 0, "Current LBA Format Selected", ""},
	},
	"dlfeat": {
		{4, 4, "Guard Field of Deallocated Logical Blocks is set to CRC of The Value Read", "Guard Field of Deallocated Logical Blocks is set to 0xFFFF"},
		{3, 3, "Deallocate Bit in the Write Zeroes Command is Supported", "Deallocate Bit in the Write Zeroes Command is Not Supported"},
		{2, 0, "Bytes Read From a Deallocated Logical Block (0: not reported, 1: all 0x00, 2: all 0xFF)", ""},
	},
	"nmic": {{0, 0, "Namespace Multipath Capable", "Namespace Not Multipath Capable"}},
}

// asUint is a field's value as a number, for its bit fields.
func asUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case hexVal:
		return uint64(x), true
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	}
	return 0, false
}

// printHuman prints fields as printFields does, each decoded field
// followed by its bit fields as nvme-cli -H prints them.
func printHuman(w io.Writer, title string, fields []kv, decode map[string][]bits, width int) {
	fmt.Fprintln(w, title)
	for _, f := range fields {
		fmt.Fprintf(w, "%-*s: %v\n", width, f.k, f.v)
		v, ok := asUint(f.v)
		if !ok {
			continue
		}
		for _, b := range decode[f.k] {
			x := v >> b.lo & (1<<(b.hi-b.lo+1) - 1)
			text := b.on
			if b.hi == b.lo && x == 0 && b.off != "" {
				text = b.off
			}
			fmt.Fprintf(w, "  [%d:%d] : %#x\t%s\n", b.hi, b.lo, x, text)
		}
		if len(decode[f.k]) > 0 {
			fmt.Fprintln(w)
		}
	}
}
