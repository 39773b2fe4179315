// Package metrics exports a reference target's counters in the
// Prometheus format, so that a lab can graph a long run.
//
// The counters are read from Target.Stats at each scrape (a collector,
// not instruments on the I/O path): the target's per-I/O cost stays its
// own atomic counters, and the latency histograms are the target's
// HDR histograms rebucketed.
package metrics

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nvmftest/nvmftest/target"
)

// LatencyBounds are the latency histogram's bucket bounds, in seconds:
// 10 µs to 10 s.
var LatencyBounds = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}

const ns = "nvmftest_target_"

var (
	nsLabels   = []string{"subnqn", "nsid"}
	descCmds   = prometheus.NewDesc(ns+"commands_total", "I/O commands completed, by operation (read, write, other).", append(nsLabels, "op"), nil)
	descBytes  = prometheus.NewDesc(ns+"bytes_total", "Data of successful reads (Read, Compare) and writes (Write).", append(nsLabels, "direction"), nil)
	descErrors = prometheus.NewDesc(ns+"errors_total", "I/O commands completed with an error, by status.", append(nsLabels, "status"), nil)
	descLat    = prometheus.NewDesc(ns+"latency_seconds", "I/O command latency, from the command's arrival to its completion.", append(nsLabels, "op"), nil)
	descConns  = prometheus.NewDesc(ns+"connections", "TCP connections open.", nil, nil)
	descAccept = prometheus.NewDesc(ns+"connections_accepted_total", "TCP connections accepted.", nil, nil)
	descCtrls  = prometheus.NewDesc(ns+"controllers", "I/O controllers (associations) alive.", nil, nil)
	descAssoc  = prometheus.NewDesc(ns+"associations_total", "Controllers created (I/O and discovery).", nil, nil)
	descRefuse = prometheus.NewDesc(ns+"refused_connects_total", "Connections and Connect commands refused, by reason.", []string{"reason"}, nil)
	descUptime = prometheus.NewDesc(ns+"uptime_seconds", "Seconds since the target was made.", nil, nil)
)

// Collector is a prometheus.Collector over a target's Stats.
type Collector struct{ T *target.Target }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCmds, descBytes, descErrors, descLat, descConns, descAccept, descCtrls, descAssoc, descRefuse, descUptime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.T.Stats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(descConns, float64(st.Connections))
	counter(descAccept, st.Accepted)
	gauge(descCtrls, float64(len(st.Controllers)))
	counter(descAssoc, st.Associations)
	gauge(descUptime, c.T.Uptime().Seconds())
	for r, n := range st.RefusedConnects {
		counter(descRefuse, n, r)
	}
	for _, s := range st.Subsystems {
		for _, n := range s.Namespaces {
			id := strconv.FormatUint(uint64(n.NSID), 10)
			counter(descCmds, n.Reads, s.NQN, id, "read")
			counter(descCmds, n.Writes, s.NQN, id, "write")
			counter(descCmds, n.Others, s.NQN, id, "other")
			counter(descBytes, n.BytesRead, s.NQN, id, "read")
			counter(descBytes, n.BytesWritten, s.NQN, id, "write")
			names := map[string]uint64{}
			for st, v := range n.StatusCounts() {
				names[target.StatusName(st)] += v
			}
			for name, v := range names {
				counter(descErrors, v, s.NQN, id, name)
			}
			for _, op := range target.OpNames {
				count, sum, buckets, ok := n.LatencyBuckets(op, LatencyBounds)
				if !ok {
					continue
				}
				ch <- prometheus.MustNewConstHistogram(descLat, count, sum, buckets, s.NQN, id, op)
			}
		}
	}
}

// Handler serves t's metrics (and none of the Go runtime's: the target
// runs inside nvmftest, whose process metrics are not the target's).
func Handler(t *target.Target) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector{T: t})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
