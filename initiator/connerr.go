package initiator

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/nvmftest/nvmftest/nvme"
	"github.com/nvmftest/nvmftest/nvme/tcp"
)

// ConnectInvalidParamError is a Fabrics Connect refused with Connect
// Invalid Parameters (SCT 1h, SC 82h), with the field its IATTR/IPO name.
// errors.As to nvme.Status still finds the status.
type ConnectInvalidParamError struct {
	Status nvme.Status
	InData bool   // IATTR bit 0: Offset is in the Connect data, not the SQE
	Offset uint16 // IPO: byte offset of the refused field
}

// Field names the refused field: SUBNQN, HOSTNQN, HOSTID, CNTLID in the
// Connect data; QID, SQSIZE, CATTR, KATO, RECFMT in the SQE.
func (e *ConnectInvalidParamError) Field() string {
	if e.InData {
		switch e.Offset {
		case nvme.ConnectDataOffHOSTID:
			return "HOSTID"
		case nvme.ConnectDataOffCNTLID:
			return "CNTLID"
		case nvme.ConnectDataOffSUBNQN:
			return "SUBNQN"
		case nvme.ConnectDataOffHOSTNQN:
			return "HOSTNQN"
		}
		return "data offset " + strconv.Itoa(int(e.Offset))
	}
	// SQE byte offsets: CDW10 is byte 40.
	switch e.Offset {
	case 40:
		return "RECFMT"
	case 42:
		return "QID"
	case 44:
		return "SQSIZE"
	case 46:
		return "CATTR"
	case 48:
		return "KATO"
	}
	return "command offset " + strconv.Itoa(int(e.Offset))
}

// Error names the status without the alias its code has outside Fabrics
// commands (01h/82h is also "Attempted Write to Read Only Range").
func (e *ConnectInvalidParamError) Error() string {
	dnr := ""
	if e.Status.DNR() {
		dnr = " DNR"
	}
	return fmt.Sprintf("Connect refused: Invalid Parameters at %s (sct=%#x sc=%#02x%s)", e.Field(), e.Status.SCT(), e.Status.SC(), dnr)
}

// Unwrap returns the status.
func (e *ConnectInvalidParamError) Unwrap() error { return e.Status }

// NotNVMeTCPError is connection initialization with a peer that answered
// the ICReq with something other than NVMe/TCP: the port is another
// service.
type NotNVMeTCPError struct {
	Addr  string
	First []byte // the first bytes the peer sent (a PDU header's worth)
	Err   error  // what decoding them gave
}

func (e *NotNVMeTCPError) Error() string {
	return fmt.Sprintf("peer %s is not speaking NVMe/TCP (first bytes: %s)", e.Addr, quoteBytes(e.First))
}

// Unwrap returns the decoding error.
func (e *NotNVMeTCPError) Unwrap() error { return e.Err }

// NoICRespError is connection initialization with a peer that accepted
// the TCP connection and sent nothing back within After.
type NoICRespError struct {
	Addr  string
	After time.Duration
	Err   error
}

func (e *NoICRespError) Error() string {
	_, port, _ := net.SplitHostPort(e.Addr)
	return fmt.Sprintf("no ICResp from %s within %v: is %s an NVMe/TCP port?", e.Addr, e.After, port)
}

// Unwrap returns the read's error.
func (e *NoICRespError) Unwrap() error { return e.Err }

// quoteBytes shows b as text when it is mostly printable (an HTTP or SSH
// banner), else in hex.
func quoteBytes(b []byte) string {
	printable := 0
	for _, c := range b {
		if c >= 0x20 && c < 0x7f || c == '\r' || c == '\n' || c == '\t' {
			printable++
		}
	}
	if len(b) > 0 && printable*4 >= len(b)*3 {
		q := strconv.Quote(string(b))
		return "'" + q[1:len(q)-1] + " ...'"
	}
	return fmt.Sprintf("% x ...", b)
}

// icError turns a failed ICReq/ICResp exchange into what the user needs
// to know: a silent peer (idle: not one byte arrived) or one that speaks
// something else. Other errors come back as they are.
func icError(err error, addr string, idle bool, after time.Duration) error {
	var pt *tcp.PeerTerminated
	if errors.As(err, &pt) {
		return err // an NVMe/TCP peer refusing the ICReq
	}
	var fe *tcp.FatalError
	if errors.As(err, &fe) && len(fe.Header) > 0 && !c2hType(fe.Header[0]) {
		// Not even a PDU type a controller sends: another protocol.
		return &NotNVMeTCPError{Addr: addr, First: fe.Header, Err: err}
	}
	if idle {
		if isTimeout(err) {
			return &NoICRespError{Addr: addr, After: after, Err: err}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("peer %s closed the connection without an ICResp: is it an NVMe/TCP port? (%w)", addr, err)
		}
	}
	return err
}

// c2hType reports whether t is a PDU type a controller sends.
func c2hType(t byte) bool {
	switch tcp.PDUType(t) {
	case tcp.TypeICResp, tcp.TypeC2HTermReq, tcp.TypeCapsuleResp, tcp.TypeC2HData, tcp.TypeR2T:
		return true
	}
	return false
}
