package loadgen

import "time"

// CPUUsage is what the whole nvmftest process used while a job's phase
// ran, from getrusage(RUSAGE_SELF) read when the phase started and ended.
// fio reports each job thread's own usage; goroutines have no per-thread
// accounting, so every job of a phase shows the same process-wide
// numbers (the target too, with --embedded). That still answers the
// question they are for: is the load generator the bottleneck? usr+sys
// near 100% per core given to the process says it is.
type CPUUsage struct {
	User, Sys time.Duration // CPU time in user and kernel mode
	// Ctx counts context switches, voluntary and involuntary.
	Ctx            int64
	MajFlt, MinFlt int64 // page faults (fio's majf, minf)
	Wall           time.Duration
}

// UsrPct and SysPct are fio's usr_cpu and sys_cpu: CPU time as a percent
// of the phase's wall time (100 = one core busy all along).
func (c CPUUsage) UsrPct() float64 { return pct(c.User, c.Wall) }

// SysPct is fio's sys_cpu; see UsrPct.
func (c CPUUsage) SysPct() float64 { return pct(c.Sys, c.Wall) }

func pct(d, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * float64(d) / float64(wall)
}

// cpuSnap is one getrusage reading and when it was taken.
type cpuSnap struct {
	at time.Time
	u  CPUUsage
}

func takeCPU() cpuSnap { return cpuSnap{at: time.Now(), u: rusage()} }

// since is what the process used between s0 and s.
func (s cpuSnap) since(s0 cpuSnap) CPUUsage {
	return CPUUsage{User: s.u.User - s0.u.User, Sys: s.u.Sys - s0.u.Sys, Ctx: s.u.Ctx - s0.u.Ctx,
		MajFlt: s.u.MajFlt - s0.u.MajFlt, MinFlt: s.u.MinFlt - s0.u.MinFlt, Wall: s.at.Sub(s0.at)}
}
