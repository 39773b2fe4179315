package nvme

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// codec is a fixed-size structure with Put and Decode.
type codec[T any] interface {
	*T
	Put([]byte)
	Decode([]byte) error
}

// stable checks that Decode fails exactly when data is shorter than size,
// and that decode -> Put -> decode returns the same value and Put of that
// value is itself stable.
func stable[T comparable, P codec[T]](t *testing.T, name string, data []byte, size int) {
	t.Helper()
	var a T
	if err := P(&a).Decode(data); err != nil {
		if len(data) >= size {
			t.Fatalf("%s: Decode of %d bytes: %v", name, len(data), err)
		}
		return
	}
	if len(data) < size {
		t.Fatalf("%s: Decode accepted %d bytes, needs %d", name, len(data), size)
	}
	buf := make([]byte, size)
	P(&a).Put(buf)
	var b T
	if err := P(&b).Decode(buf); err != nil || a != b {
		t.Fatalf("%s: decode -> encode -> decode unstable:\n%+v\n%+v (%v)", name, a, b, err)
	}
	buf2 := make([]byte, size)
	P(&b).Put(buf2)
	if !bytes.Equal(buf, buf2) {
		t.Fatalf("%s: encoding unstable", name)
	}
}

func FuzzDecoders(f *testing.F) {
	for _, h := range []string{linuxConnectAdminSQE, linuxConnectIOSQE,
		"7f40001000000000000000000000000000000000000000000000000000000000000000000000005a000000001400000060004600000000000000000000000000",
		"02401b3000000000000000000000000000000000000000000000000000000000100000000000005a0c8003000000000000200000000000000000000000000000",
		"ff03000f200800000200000001000000",
		"031000005cdb291256ce4c3cbf5cf4cf6d23cfa50401",
	} {
		f.Add(mustHex(f, h))
	}
	f.Add(sparse(f, ConnectDataSize, linuxConnectData))
	f.Add(sparse(f, IdentifyDataSize, nvmetIdentifyController))
	f.Add(sparse(f, IdentifyDataSize, nvmetIdentifyDiscovery))
	f.Add(sparse(f, 3072, nvmetDiscoveryLog))
	f.Add(sparse(f, 8208, nvmetANALog)[:64])
	f.Add(sparse(f, 512, map[int]string{32: "01", 64: "06"}))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		// Fixed-size structures.
		stable[SQE](t, "SQE", data, SQESize)
		stable[CQE](t, "CQE", data, CQESize)
		stable[IdentifyController](t, "IdentifyController", data, IdentifyDataSize)
		stable[IdentifyNamespace](t, "IdentifyNamespace", data, IdentifyDataSize)
		stable[ErrorLogEntry](t, "ErrorLogEntry", data, ErrorLogEntrySize)
		stable[SMARTLog](t, "SMARTLog", data, SMARTLogSize)
		stable[FirmwareSlotLog](t, "FirmwareSlotLog", data, FirmwareSlotLogSize)
		stable[CommandsEffectsLog](t, "CommandsEffectsLog", data, CommandsEffectsLogSize)
		stable[DiscoveryLogEntry](t, "DiscoveryLogEntry", data, DiscoveryLogEntrySize)
		stable[ConnectData](t, "ConnectData", data, ConnectDataSize)
		stable[DSMRange](t, "DSMRange", data, DSMRangeSize)

		// Command field decoders: rebuilding from the decoded fields gives
		// the same fields back.
		var s SQE
		if s.Decode(data) == nil {
			c := DecodeConnect(&s)
			s2 := c.SQE(s.CID)
			if DecodeConnect(&s2) != c {
				t.Fatalf("Connect %+v", c)
			}
			off, size8, val := DecodeProperty(&s)
			p := PropertySetCmd(s.CID, off, size8, val)
			if o2, z2, v2 := DecodeProperty(&p); o2 != off || z2 != size8 || v2 != val {
				t.Fatal("Property")
			}
			if LogPageNUMD(&s) < 1<<30-1 {
				g := GetLogPageCmd(LogPageLID(&s), s.NSID, LogPageLSP(&s), LogPageOffset(&s), LogPageLength(&s))
				if LogPageLID(&g) != LogPageLID(&s) || LogPageLSP(&g) != LogPageLSP(&s) ||
					LogPageOffset(&g) != LogPageOffset(&s) || LogPageNUMD(&g) != LogPageNUMD(&s) {
					t.Fatalf("GetLogPage %+v -> %+v", s, g)
				}
			}
			_ = FeatureID(&s) + FeatureSelect(&s)
			_ = CommandName(s.Opcode != CmdRead, &s)
		}
		if len(data) >= 4 {
			dw := binary.LittleEndian.Uint32(data)
			nsq, ncq := DecodeNumQueues(dw)
			if NumQueuesValue(nsq, ncq) != dw {
				t.Fatalf("NumQueues %#x", dw)
			}
			in, off := DecodeConnectInvalidParam(dw)
			if in2, off2 := DecodeConnectInvalidParam(ConnectInvalidParam(in, off)); in2 != in || off2 != off {
				t.Fatal("ConnectInvalidParam")
			}
		}

		// Variable-size structures.
		if ds, err := DecodeNSDescriptors(data); err == nil {
			b := AppendNSDescriptors(nil, ds)
			ds2, err := DecodeNSDescriptors(b)
			if err != nil || !reflect.DeepEqual(ds, ds2) {
				t.Fatalf("NSDescriptors %+v -> %+v (%v)", ds, ds2, err)
			}
		}
		ids := DecodeNSList(data)
		if ids2 := DecodeNSList(AppendNSList(nil, ids)); !reflect.DeepEqual(ids, ids2) {
			t.Fatalf("NSList %v -> %v", ids, ids2)
		}
		ids = DecodeChangedNSList(data)
		if ids2 := DecodeChangedNSList(AppendChangedNSList(nil, ids)); !reflect.DeepEqual(ids, ids2) {
			t.Fatalf("ChangedNSList %v -> %v", ids, ids2)
		}
		if l, err := DecodeANALog(data); err == nil {
			l2, err := DecodeANALog(l.Append(nil, false))
			if err != nil || !reflect.DeepEqual(l, l2) {
				t.Fatalf("ANALog %+v -> %+v (%v)", l, l2, err)
			}
			l3, err := DecodeANALog(l.Append(nil, true))
			if err != nil || len(l3.Groups) != len(l.Groups) {
				t.Fatalf("ANALog RGO: %v", err)
			}
		} else if len(data) >= ANALogHeaderSize && err != ErrANALog {
			t.Fatalf("ANALog: %v", err)
		}
		if l, err := DecodeDiscoveryLog(data); err == nil {
			l2, err := DecodeDiscoveryLog(l.Append(nil))
			if err != nil || !reflect.DeepEqual(l, l2) {
				t.Fatalf("DiscoveryLog unstable (%v)", err)
			}
		} else if len(data) >= DiscoveryLogHeaderSize {
			t.Fatalf("DiscoveryLog: %v", err)
		}
		_, _, _, _ = DecodeDiscoveryLogHeader(data)
	})
}
