package fuzz

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// Anomalies lists what is malformed in c, field by field and in the
// order of PDUs: a header length, PDO or PLEN other than the PDU's own,
// unknown flags, a PDU type a host does not send, PDUs before the ICReq or
// a second ICReq on a connection. For a minimized case this is what the
// target choked on, whatever mutations led there, so findings whose
// minimal cases have the same anomalies are one finding.
func Anomalies(c *Case) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	icreq := map[int]bool{}
	for _, s := range c.Steps {
		b := s.Bytes
		if len(b) < tcp.CommonHeaderSize {
			add(fmt.Sprintf("%s truncated in the common header", typeName(b)))
			continue
		}
		t := tcp.PDUType(b[0])
		name := t.String()
		if t == tcp.TypeCapsuleCmd && len(b) > 12 && b[8] == nvme.AdminFabrics {
			name = fmt.Sprintf("CapsuleCmd(fabrics %#02x)", b[12])
			if b[12] == nvme.FabricsConnect {
				name = "CapsuleCmd(Connect)"
			}
		}
		switch t {
		case tcp.TypeICReq, tcp.TypeH2CTermReq, tcp.TypeCapsuleCmd, tcp.TypeH2CData:
		default:
			add(name + " from the host")
			continue
		}
		if t == tcp.TypeICReq {
			if icreq[s.Conn] {
				add("ICReq again")
			}
			icreq[s.Conn] = true
		} else if !icreq[s.Conn] {
			add(name + " before ICReq")
		}
		hlen := tcp.HLen(t)
		if int(b[2]) != hlen {
			add(name + ".HLEN")
		}
		plen := int(binary.LittleEndian.Uint32(b[4:]))
		if plen != len(b) {
			add(name + ".PLEN")
		}
		if b[1]&^(tcp.FlagHDGST|tcp.FlagDDGST|tcp.FlagLastPDU) != 0 {
			add(name + ".Flags")
		}
		hd := 0
		if b[1]&tcp.FlagHDGST != 0 {
			hd = tcp.DigestSize
		}
		pdo := int(b[3])
		switch {
		case t == tcp.TypeICReq || t == tcp.TypeH2CTermReq:
			if pdo != 0 {
				add(name + ".PDO")
			}
		case plen > hlen+hd && pdo < hlen:
			add(name + ".PDO inside the header")
		case plen > hlen+hd && pdo < hlen+hd:
			add(name + ".PDO inside the header digest")
		case plen <= hlen+hd && pdo != 0:
			add(name + ".PDO without data")
		}
	}
	return out
}

// anomalyKey is the deduplication key of a minimized finding.
func anomalyKey(oracle string, c *Case) string {
	a := Anomalies(c)
	sort.Strings(a)
	if len(a) == 0 {
		a = []string{"no malformed PDU"}
	}
	return oracle + ": " + strings.Join(a, ", ")
}
