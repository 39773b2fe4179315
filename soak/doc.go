// Package soak is the soak test a release runs against nvmftest's
// reference target. It has no API: everything is in TestSoak.
//
// # What it runs
//
// One target, in process (target.New): three loopback ports (everything;
// NVM subsystems only; discovery only), a subsystem with four namespaces
// (memory and file backends, 512 B and 4 KiB blocks) and a subsystem
// restricted to one host. For a bounded time, many actors at once:
//
//   - Well-behaved hosts: initiator.Connect with 2 to 4 I/O queues (some
//     with header and data digests, some with SQ flow control off), a
//     Multipath over two ports, and discovery hosts. They connect, run
//     reads, writes, Write Zeroes, Compare, Compare and Write and Flush,
//     disconnect and reconnect. Each owns its blocks, and every block it
//     writes carries its namespace, LBA, writer and generation, so every
//     read is verified exactly.
//   - Misbehaving peers, each a small function over a raw connection:
//     halfpdu, icreqonly, flood, emfile (the process runs out of
//     descriptors while a connection waits to be accepted), slowreader,
//     fused, r2tstall, abrupt, termreq, baddigest, outoforder, badconnect,
//     afterdisconnect. They write only blocks no host owns.
//
// # The oracles
//
//   - The process never panics (a panic ends the test binary).
//   - Every host's verification is clean (no lost, stale, misplaced,
//     foreign or torn block) and it sees no error at all: nothing a
//     well-behaved host does may fail.
//   - A peer the target must let go of is let go of within the bound the
//     configuration sets (ic_timeout, idle_timeout, the write-stall and
//     R2T bounds), plus a slack for a loaded machine; a port serves a
//     fresh ICReq after a flood or descriptor exhaustion; a bad Connect is
//     refused.
//   - The live heap (as of each collection) stays under a ceiling above
//     the baseline all along.
//   - Once every actor has stopped, goroutines, open descriptors, the
//     target's live controllers (counted from its log) and heap in use
//     come back to the baseline within stated tolerances and a bounded
//     settle time; then a fresh host connects, does I/O and reads back
//     every block every host owns.
//
// The bounds and tolerances are constants in config_test.go and
// meter_test.go, each with the reason for its value.
//
// # Running it
//
// `go test ./soak/` runs the actors for 15 s (5 s with -short). For a
// long soak set NVMFTEST_SOAK to a duration, or use `make soak`
// (SOAK=10m by default):
//
//	NVMFTEST_SOAK=1h go test -race -count=1 -v -timeout 2h -run '^TestSoak$' ./soak/
//
// NVMFTEST_SOAK_SKIP=fused,slowreader leaves actors out and
// NVMFTEST_SOAK_ONLY=host,fused runs only those; NVMFTEST_SOAK=off skips
// the soak. Every run prints its seed; NVMFTEST_SOAK_SEED=N repeats the
// actors' choices of that run (the interleaving is the scheduler's).
// NVMFTEST_SOAK_TRACE=1 prints every episode as it starts.
//
// # Reading a failure
//
// The first lines of the output name the seed and the command that
// repeats the run. A panic trace means the target died: the goroutine
// that panicked shows where; rerun with NVMFTEST_SOAK_ONLY set to one
// misbehaving actor at a time (and NVMFTEST_SOAK_TRACE=1) to find which
// episode does it. Otherwise each failure is one VIOLATION line:
// [actor] what went wrong, how often, when first, and the first few
// occurrences in detail. "connection not ended within its bound" and
// "kept queueing data" name the bound that did not hold; "verify
// mismatch" names the block and what it holds; a settle failure lists
// what stayed above the baseline with the open descriptors by kind and
// every goroutine's stack. The figures (baseline, peak, I/Os, episodes by
// variant, how the target reacted) are logged in every run.
package soak
