package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nvmftest/nvmftest/initiator"
	"github.com/nvmftest/nvmftest/nvme"
)

func newDiscoverCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortDiscovery)}
	c := &cobra.Command{
		Use:   "discover -t tcp -a ADDRESS [-s 8009]",
		Short: "Read the Discovery log page of a discovery controller",
		Example: `  nvmftest discover -t tcp -a 127.0.0.1 -s 8009
  nvmftest discover -t tcp -a 192.0.2.10 -o json`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			o := f.options(-1)
			log, err := initiator.Discover(c.Context(), f.addr(), o)
			if err != nil {
				return fmt.Errorf("failed to discover %s: %w", f.addr(), err)
			}
			if f.output == "json" {
				writeJSON(c.OutOrStdout(), discoveryJSON(log))
				return nil
			}
			printDiscoveryLog(c.OutOrStdout(), log)
			return nil
		},
	}
	addConnFlags(c, f)
	return c
}

var trtypeNames = map[uint8]string{1: "rdma", 2: "fc", 3: "tcp", 254: "loop"}
var adrfamNames = map[uint8]string{1: "ipv4", 2: "ipv6", 3: "infiniband", 4: "fibre-channel", 254: "loop"}
var subtypeNames = map[uint8]string{
	nvme.SubtypeReferral:         "discovery subsystem referral",
	nvme.SubtypeNVM:              "nvme subsystem",
	nvme.SubtypeCurrentDiscovery: "current discovery subsystem",
}

func name(m map[uint8]string, v uint8) string {
	if s, ok := m[v]; ok {
		return s
	}
	return "unrecognized"
}

func treqString(t uint8) string {
	var s string
	switch t & 3 {
	case 0:
		s = "not specified"
	case 1:
		s = "required"
	case 2:
		s = "not required"
	default:
		s = "reserved"
	}
	if t&4 != 0 {
		s += ", sq flow control disable supported"
	}
	return s
}

func eflagsString(e uint16) string {
	var parts []string
	if e&nvme.EFlagsEPCSD != 0 {
		parts = append(parts, "explicit discovery connections")
	}
	if e&nvme.EFlagsDUPRETINFO != 0 {
		parts = append(parts, "duplicate discovery information")
	}
	if e&nvme.EFlagsNCC != 0 {
		parts = append(parts, "no cdc connectivity")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sectypeString(s uint8) string {
	switch s {
	case 0:
		return "none"
	case 1:
		return "tls12"
	case 2:
		return "tls13"
	}
	return "reserved"
}

// printDiscoveryLog prints the log as `nvme discover` does.
func printDiscoveryLog(w io.Writer, l *nvme.DiscoveryLog) {
	fmt.Fprintf(w, "\nDiscovery Log Number of Records %d, Generation counter %d\n", l.NUMREC, l.GENCTR)
	for i, e := range l.Entries {
		fmt.Fprintf(w, "=====Discovery Log Entry %d======\n", i)
		fmt.Fprintf(w, "trtype:  %s\n", name(trtypeNames, e.TRTYPE))
		fmt.Fprintf(w, "adrfam:  %s\n", name(adrfamNames, e.ADRFAM))
		fmt.Fprintf(w, "subtype: %s\n", name(subtypeNames, e.SUBTYPE))
		fmt.Fprintf(w, "treq:    %s\n", treqString(e.TREQ))
		fmt.Fprintf(w, "portid:  %d\n", e.PORTID)
		fmt.Fprintf(w, "trsvcid: %s\n", e.TRSVCID)
		fmt.Fprintf(w, "subnqn:  %s\n", e.SUBNQN)
		fmt.Fprintf(w, "traddr:  %s\n", e.TRADDR)
		fmt.Fprintf(w, "eflags:  %s\n", eflagsString(e.EFLAGS))
		fmt.Fprintf(w, "sectype: %s\n", sectypeString(e.SECTYPE()))
	}
}

type discoveryEntryJSON struct {
	Trtype  string `json:"trtype"`
	Adrfam  string `json:"adrfam"`
	Subtype string `json:"subtype"`
	Treq    string `json:"treq"`
	Portid  uint16 `json:"portid"`
	Trsvcid string `json:"trsvcid"`
	Subnqn  string `json:"subnqn"`
	Traddr  string `json:"traddr"`
	Eflags  string `json:"eflags"`
	Sectype string `json:"sectype"`
}

func discoveryJSON(l *nvme.DiscoveryLog) any {
	out := struct {
		Genctr  uint64               `json:"genctr"`
		Records []discoveryEntryJSON `json:"records"`
	}{Genctr: l.GENCTR, Records: []discoveryEntryJSON{}}
	for _, e := range l.Entries {
		out.Records = append(out.Records, discoveryEntryJSON{
			name(trtypeNames, e.TRTYPE), name(adrfamNames, e.ADRFAM), name(subtypeNames, e.SUBTYPE),
			treqString(e.TREQ), e.PORTID, e.TRSVCID, e.SUBNQN, e.TRADDR, eflagsString(e.EFLAGS), sectypeString(e.SECTYPE()),
		})
	}
	return out
}

func newConnectCmd() *cobra.Command {
	f := &connFlags{defPort: strconv.Itoa(nvme.PortIO), needNQN: true, ioQueues: true}
	var hold time.Duration
	c := &cobra.Command{
		Use:   "connect -t tcp -a ADDRESS -n SUBNQN [--hold DURATION]",
		Short: "Create an association (admin and I/O queues) and report it",
		Example: `  nvmftest connect -t tcp -a 127.0.0.1 -n nqn.2014-08.io.nvmftest:target
  nvmftest connect -t tcp -a 127.0.0.1 -n NQN -g -G -i 4 --hold 30s`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) (err error) {
			if hold < 0 {
				return usagef("invalid --hold %v: must not be negative", hold)
			}
			ctrl, err := f.connect(c.Context(), 0)
			if err != nil {
				return err
			}
			defer closeCtrl(ctrl, &err)
			w := c.OutOrStdout()
			printConnection(w, f, ctrl)
			if hold > 0 {
				o := ctrl.Options()
				if f.output == "normal" {
					fmt.Fprintf(w, "holding the association for %v (keep-alive every %v)\n", hold, o.KATO/2)
				}
				t := time.NewTimer(hold)
				defer t.Stop()
				select {
				case <-t.C:
				case <-c.Context().Done():
				case <-ctrl.Admin().Dead():
					return fmt.Errorf("association lost: %v", ctrl.Admin().Err())
				}
			}
			if f.output == "normal" {
				defer fmt.Fprintln(w, "disconnected")
			}
			return nil
		},
	}
	c.Flags().DurationVar(&hold, "hold", 0, "keep the association this long (sending keep-alives) before disconnecting")
	addConnFlags(c, f)
	return c
}

func printConnection(w io.Writer, f *connFlags, c *initiator.Controller) {
	id := c.IdentifyData()
	o := c.Options()
	qs := c.IOQueues()
	if f.output == "json" {
		type qj struct {
			QID        uint16 `json:"qid"`
			Depth      int    `json:"depth"`
			InlineData int    `json:"inline_data"`
			MaxH2CData uint32 `json:"maxh2cdata"`
			CPDA       uint8  `json:"cpda"`
			HdrDigest  bool   `json:"hdr_digest"`
			DataDigest bool   `json:"data_digest"`
		}
		var queues []qj
		for _, q := range append([]*initiator.Queue{c.Admin()}, qs...) {
			r := q.ICResp()
			d := q.Digests()
			queues = append(queues, qj{q.QID(), q.Depth(), q.InlineDataSize(), r.MAXH2CDATA, r.CPDA, d.Header, d.Data})
		}
		writeJSON(w, map[string]any{
			"subnqn": c.SubNQN(), "traddr": f.traddr, "trsvcid": f.trsvcid,
			"hostnqn": o.HostNQN, "cntlid": c.CNTLID(), "version": nvme.VersionString(c.Version()),
			"mn": id.MN, "sn": id.SN, "fr": id.FR, "kato_ms": o.KATO.Milliseconds(), "queues": queues,
		})
		return
	}
	fmt.Fprintf(w, "connected to %s at %s\n", c.SubNQN(), f.addr())
	fmt.Fprintf(w, "hostnqn:  %s\n", o.HostNQN)
	fmt.Fprintf(w, "cntlid:   %d\n", c.CNTLID())
	fmt.Fprintf(w, "version:  %s\n", nvme.VersionString(c.Version()))
	fmt.Fprintf(w, "mn:       %s\nsn:       %s\nfr:       %s\n", id.MN, id.SN, id.FR)
	fmt.Fprintf(w, "kato:     %v\n", o.KATO)
	for _, q := range append([]*initiator.Queue{c.Admin()}, qs...) {
		r := q.ICResp()
		d := q.Digests()
		kind := "I/O  "
		if q.QID() == 0 {
			kind = "admin"
		}
		fmt.Fprintf(w, "queue %2d: %s depth %d, in-capsule %d B, maxh2cdata %d, cpda %d, hdgst %v, ddgst %v\n",
			q.QID(), kind, q.Depth(), q.InlineDataSize(), r.MAXH2CDATA, r.CPDA, d.Header, d.Data)
	}
}
