package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

// memDevice keeps data in memory and can misbehave: drop writes to an
// LBA (a lost write) or send them to another LBA (a misplaced write).
type memDevice struct {
	mu        sync.Mutex
	bs        int
	data      []byte
	dropLBA   int64 // -1: none
	misdirect [2]int64
}

func newMemDevice(bs int, blocks int) *memDevice {
	return &memDevice{bs: bs, data: make([]byte, bs*blocks), dropLBA: -1, misdirect: [2]int64{-1, -1}}
}

func (d *memDevice) Info() DeviceInfo {
	return DeviceInfo{Name: "mem", NSID: 7, BlockSize: d.bs, Blocks: uint64(len(d.data) / d.bs)}
}
func (d *memDevice) Init(*IO) {}
func (d *memDevice) Submit(io *IO) error {
	d.mu.Lock()
	for i := 0; i < int(io.NLB); i++ {
		lba := int64(io.LBA) + int64(i)
		b := io.Buf[i*d.bs : (i+1)*d.bs]
		if io.Op == OpRead {
			copy(b, d.data[lba*int64(d.bs):])
			continue
		}
		if lba == d.dropLBA {
			continue
		}
		if lba == d.misdirect[0] {
			lba = d.misdirect[1]
		}
		copy(d.data[lba*int64(d.bs):(lba+1)*int64(d.bs)], b)
	}
	d.mu.Unlock()
	io.Err = nil
	io.Complete()
	return nil
}

func runMem(t *testing.T, d *memDevice, opts ...string) (*Result, error) {
	t.Helper()
	j := mustJob(t, "v", opts...)
	return Run(context.Background(), []Target{{Job: j, Devices: []Device{d}}}, RunOptions{})
}

func TestVerifyFindings(t *testing.T) {
	write := []string{"rw", "write", "bs", "4k", "iodepth", "4", "verify", "crc32c", "size", "256k"}
	read := []string{"rw", "randread", "bs", "16k", "iodepth", "4", "verify", "crc32c", "size", "256k"}

	d := newMemDevice(512, 1024)
	if res, err := runMem(t, d, write...); err != nil || res.Jobs[0].Verified != 512 {
		t.Fatalf("clean write job: %v, %d verified", err, res.Jobs[0].Verified)
	}
	if res, err := runMem(t, d, read...); err != nil || res.Jobs[0].Verified != 512 {
		t.Fatalf("clean read job: %v", err)
	}

	for _, tc := range []struct {
		name    string
		breakIt func(d *memDevice)
		job     []string
		lba     uint64
		reason  string
	}{
		{"corrupt", func(d *memDevice) { d.data[100*512+77] ^= 1 }, read, 100, "crc32c mismatch"},
		{"misplaced", func(d *memDevice) { copy(d.data[200*512:201*512], d.data[201*512:202*512]) }, read, 200, "holds the data written to LBA 201"},
		{"lost write", func(d *memDevice) { d.dropLBA = 300 }, write, 300, "no verify header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newMemDevice(512, 1024)
			if tc.name != "lost write" {
				if _, err := runMem(t, d, write...); err != nil {
					t.Fatal(err)
				}
			}
			tc.breakIt(d)
			_, err := runMem(t, d, tc.job...)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.LBA != tc.lba || ve.NSID != 7 || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("got %v; want LBA %d: %s", err, tc.lba, tc.reason)
			}
			t.Log(err)
		})
	}
	// A lost overwrite: the old, self-consistent block reads back.
	t.Run("stale", func(t *testing.T) {
		d := newMemDevice(512, 1024)
		if _, err := runMem(t, d, write...); err != nil {
			t.Fatal(err)
		}
		d.dropLBA = 310
		_, err := runMem(t, d, append(append([]string{}, write...), "randseed", "9")...)
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.LBA != 310 || !strings.Contains(ve.Reason, "stale data") {
			t.Fatalf("got %v", err)
		}
		t.Log(err)
	})
}

// TestVerifyReadOfUnverifiableData: a read job with verify over blocks no
// verify job wrote checked nothing; fio calls a block without its header a
// verify failure, and so does this. A mixed job that read only such
// blocks verified nothing either and must not pass.
func TestVerifyReadOfUnverifiableData(t *testing.T) {
	d := newMemDevice(512, 1024)
	for i := range d.data {
		d.data[i] = byte(i * 7)
	}
	res, err := runMem(t, d, "rw", "randread", "verify", "crc32c", "size", "64k")
	var ve *VerifyError
	if !errors.As(err, &ve) || !strings.Contains(ve.Reason, "no verify header") {
		t.Fatalf("read verify over foreign data: %v; want a verify error (no verify header)", err)
	}
	jr := res.Jobs[0]
	if jr.Err == nil || jr.Verified != 0 || jr.VerifyNoHeader != 1 {
		t.Errorf("job: err %v, %d checked, %d without header", jr.Err, jr.Verified, jr.VerifyNoHeader)
	}
	var sum strings.Builder
	WriteSummary(&sum, res)
	if !strings.Contains(sum.String(), "verify: 0 blocks checked, 1 without a verify header") {
		t.Errorf("summary:\n%s", sum.String())
	}
	fj := FioJSON(res).Jobs[0]
	if fj.Error == 0 || fj.Verified == nil || *fj.Verified != 0 || fj.VerifyNoHeader == nil || *fj.VerifyNoHeader != 1 {
		t.Errorf("JSON: error %d verified %v no header %v", fj.Error, fj.Verified, fj.VerifyNoHeader)
	}

	// A mixed job doing only reads: every block it read was never written,
	// so not one was checked.
	d = newMemDevice(512, 1024)
	res, err = runMem(t, d, "rw", "randrw", "rwmixread", "100", "verify", "crc32c", "size", "64k")
	if !errors.Is(err, ErrNothingVerified) || res.Jobs[0].Verified != 0 || res.Jobs[0].VerifyNoHeader != 128 || res.Jobs[0].Err == nil {
		t.Fatalf("mixed job that verified nothing: %v, %d checked, %d without header", err, res.Jobs[0].Verified, res.Jobs[0].VerifyNoHeader)
	}
	sum.Reset()
	WriteSummary(&sum, res)
	if !strings.Contains(sum.String(), "verify: 0 blocks checked, 128 without a verify header") {
		t.Errorf("summary:\n%s", sum.String())
	}
}

// TestVerifyNothingWarns: the normal output of a verify job that checked
// no block warns, beside the count.
func TestVerifyNothingWarns(t *testing.T) {
	d := newMemDevice(512, 1024)
	res, _ := runMem(t, d, "rw", "randrw", "rwmixread", "100", "verify", "crc32c", "size", "64k")
	var sum strings.Builder
	WriteSummary(&sum, res)
	if !strings.Contains(sum.String(), "verify: WARNING: no block was verified") {
		t.Errorf("summary:\n%s", sum.String())
	}
}
