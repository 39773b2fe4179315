// Package loadgen is nvmftest's fio-like load generator: the engine behind
// `nvmftest bench`, the demo's load step and the perf benchmarks.
//
// A Job speaks fio's vocabulary (rw, rwmixread, bs, bssplit, iodepth,
// numjobs, runtime, time_based, ramp_time, size, offset, norandommap,
// random_distribution, rate_iops, verify, randseed), set one option at a
// time with Job.Set or read from fio job files with ParseJobFile. Run
// drives jobs over Devices: an NVMe/TCP I/O queue and namespace
// (NVMeDevice; Dial connects one queue per clone) or anything else that
// implements the three-method interface, such as NullDevice, which
// completes inside Submit and so measures the engine alone.
//
// Each clone (worker) owns iodepth I/O slots made once; a completion
// records the latency and plans and submits the next I/O from the
// completing goroutine, as fio's iodepth does, with no allocation. With
// rate_iops a pacer issues I/O k at start + k/rate and latency (lat) is
// measured from that intended time, so a stalled target shows in the tail
// instead of vanishing (coordinated omission); clat is from the actual
// submission and slat is the difference.
//
// Latencies go into HdrHistograms per worker, swapped out and merged once
// per interval, which also gives the per-second series, the progress line
// and the HdrHistogram interval log. Results are written as fio's human
// summary or as fio 3.x JSON (same keys, units and percentile list).
//
// verify=crc32c writes self-describing blocks (LBA, seed, generation,
// CRC32C in a 32-byte header per logical block) and checks every block
// read; a failure is a *VerifyError naming the device, namespace and LBA.
package loadgen
