package loadgen

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// offsetGen picks the unit (a run of min-bs worth of logical blocks) each
// I/O starts at, within [0, n).
type offsetGen interface {
	next() uint64
}

// seqGen walks the units in order, wrapping at the end.
type seqGen struct {
	n, cur uint64
}

func (g *seqGen) next() uint64 {
	v := g.cur
	g.cur++
	if g.cur >= g.n {
		g.cur = 0
	}
	return v
}

// permGen visits every unit once per pass in a pseudo-random order, as
// fio's random map does: a full-period linear congruential generator
// modulo the next power of two, skipping values >= n (at most half are
// skipped). Each pass draws a new increment and start.
type permGen struct {
	n, mask uint64
	a, c, x uint64
	left    uint64
	rng     *rand.Rand
}

func newPermGen(n uint64, rng *rand.Rand) *permGen {
	m := uint64(1)
	if n > 1 {
		m = 1 << bits.Len64(n-1)
	}
	g := &permGen{n: n, mask: m - 1, rng: rng}
	g.newPass()
	return g
}

func (g *permGen) newPass() {
	// Hull-Dobell: c odd, a-1 divisible by 4 (m a power of two).
	g.a = g.rng.Uint64()&^3 | 1
	g.c = g.rng.Uint64() | 1
	g.x = g.rng.Uint64() & g.mask
	g.left = g.n
}

func (g *permGen) next() uint64 {
	if g.left == 0 {
		g.newPass()
	}
	for {
		g.x = (g.a*g.x + g.c) & g.mask
		if g.x < g.n {
			g.left--
			return g.x
		}
	}
}

// uniformGen draws units uniformly, repeats allowed (norandommap).
type uniformGen struct {
	n   uint64
	rng *rand.Rand
}

func (g *uniformGen) next() uint64 { return g.rng.Uint64N(g.n) }

// zipfMaxGen bounds the items summed for zeta(n), as fio's ZIPF_MAX_GEN.
const zipfMaxGen = 10_000_000

// zipfGen draws Zipf-distributed ranks with exponent theta by Gray et
// al.'s method ("Quickly generating billion-record synthetic databases"),
// as fio's lib/zipf.c does, and scatters ranks over the region with a
// hash so the hot units are not all at the start.
type zipfGen struct {
	n                     uint64
	theta, alpha, eta, zn float64
	zeta2                 float64
	off                   uint64
	rng                   *rand.Rand
}

func newZipfGen(n uint64, theta float64, rng *rand.Rand) *zipfGen {
	g := &zipfGen{n: n, theta: theta, rng: rng, off: rng.Uint64()}
	nn := min(n, zipfMaxGen)
	for i := uint64(1); i <= nn; i++ {
		g.zn += math.Pow(1/float64(i), theta)
	}
	g.zeta2 = math.Pow(1.0, theta) + math.Pow(0.5, theta)
	g.alpha = 1 / (1 - theta)
	g.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - g.zeta2/g.zn)
	return g
}

func (g *zipfGen) rank() uint64 {
	u := g.rng.Float64()
	uz := u * g.zn
	switch {
	case uz < 1:
		return 1
	case uz < g.zeta2:
		return 2
	}
	v := 1 + uint64(float64(g.n)*math.Pow(g.eta*u-g.eta+1, g.alpha))
	return min(max(v, 1), g.n)
}

func (g *zipfGen) next() uint64 {
	return (mix64(g.rank()-1) + g.off) % g.n
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
