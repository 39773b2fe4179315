package tcp

import (
	"errors"
	"testing"
)

// TestHostInitializeMaxH2CData holds the host to NVMe/TCP 1.0 3.6.2.3:
// MAXH2CDATA "is a multiple of dwords and should be no less than 4,096".
// A smaller multiple of 4 is only a departure from a recommendation: the
// host must still connect (so a conformance run can test such a target
// and report it). Zero and values that are not dword multiples are
// invalid ICResp fields (FES 1 at MAXH2CDATA, byte 12).
func TestHostInitializeMaxH2CData(t *testing.T) {
	for _, tc := range []struct {
		maxh2c uint32
		ok     bool
	}{
		{4096, true},
		{2048, true},
		{512, true},
		{4, true},
		{0, false},
		{4098, false},
		{2047, false},
	} {
		host, ctrl := pipePair(t)
		// The controller side announces exactly the value under test; a
		// raw ICResp, so ControllerInitialize's own default for 0 does not
		// get in the way.
		go func() {
			if _, err := ctrl.Next(); err != nil {
				return
			}
			_ = ctrl.Send(&ICResp{MAXH2CDATA: tc.maxh2c}, nil)
		}()
		resp, err := host.HostInitialize(ICReq{})
		if tc.ok {
			if err != nil || resp.MAXH2CDATA != tc.maxh2c {
				t.Errorf("MAXH2CDATA %d: %v (resp %+v), want it accepted", tc.maxh2c, err, resp)
			}
			continue
		}
		var fe *FatalError
		if !errors.As(err, &fe) || fe.FES != FESInvalidHeaderField || fe.FEI != offMAXH2CDATA {
			t.Errorf("MAXH2CDATA %d: %v, want a fatal Invalid PDU Header Field at byte 12", tc.maxh2c, err)
		}
	}
}

// TestControllerInitializeAnnouncesSmallMaxH2CData: a controller policy
// below 4096 is announced as it is (a test controller may behave like a
// target that uses such a value); only zero means the 128 KiB default.
func TestControllerInitializeAnnouncesSmallMaxH2CData(t *testing.T) {
	for _, tc := range []struct{ pol, want uint32 }{{2048, 2048}, {0, 128 << 10}} {
		host, ctrl := pipePair(t)
		done := make(chan error, 1)
		go func() {
			_, err := ctrl.ControllerInitialize(ICPolicy{MaxH2CData: tc.pol})
			done <- err
		}()
		resp, err := host.HostInitialize(ICReq{})
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if resp.MAXH2CDATA != tc.want {
			t.Errorf("policy %d: ICResp MAXH2CDATA %d, want %d", tc.pol, resp.MAXH2CDATA, tc.want)
		}
	}
}

// TestControllerInitializeDeviate: the Deviate hook of a deliberately
// wrong test controller changes the ICResp on the wire, or refuses the
// ICReq with the fatal error it names.
func TestControllerInitializeDeviate(t *testing.T) {
	t.Run("edit", func(t *testing.T) {
		host, ctrl := pipePair(t)
		go func() {
			_, _ = ctrl.ControllerInitialize(ICPolicy{Deviate: func(_ *ICReq, b []byte) (bool, uint16, uint32) {
				b[11] = DgstHeader | DgstData
				return false, 0, 0
			}})
		}()
		resp, err := host.HostInitialize(ICReq{})
		var fe *FatalError
		if !errors.As(err, &fe) || fe.FEI != offDGST || resp == nil || resp.DGST != DgstHeader|DgstData {
			t.Errorf("an ICResp granting digests not asked for: %v (resp %+v), want it sent and refused at DGST", err, resp)
		}
	})
	t.Run("refuse", func(t *testing.T) {
		host, ctrl := pipePair(t)
		done := make(chan error, 1)
		go func() {
			_, err := ctrl.ControllerInitialize(ICPolicy{Deviate: func(req *ICReq, _ []byte) (bool, uint16, uint32) {
				return req.MAXR2T > 15, FESInvalidHeaderField, 12
			}})
			done <- err
		}()
		go func() { _, _ = host.HostInitialize(ICReq{MAXR2T: 0xFFFF}) }()
		var fe *FatalError
		if err := <-done; !errors.As(err, &fe) || fe.FES != FESInvalidHeaderField || fe.FEI != 12 || len(fe.Header) == 0 {
			t.Errorf("refused ICReq: %v, want a fatal error FES 1 FEI 12 with the ICReq header", err)
		}
	})
}
