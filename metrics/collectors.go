package metrics

import (
	"context"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateGauge returns a collector of one gauge per state, read at each
// scrape with read (bounded by two seconds). A failed read shows as a
// scrape error of this metric only.
//
// Deprecated: a figure read from Redis belongs to the Refresher, so that a
// scrape never reaches Redis; the daemon registers none of these.
func StateGauge(name, help, label string, read func(ctx context.Context) (map[string]int64, error)) prometheus.Collector {
	return &stateGauge{desc: prometheus.NewDesc(name, help, []string{label}, nil), read: read}
}

type stateGauge struct {
	desc *prometheus.Desc
	read func(ctx context.Context) (map[string]int64, error)
}

func (g *stateGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *stateGauge) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := g.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.desc, err)
		return
	}
	for state, n := range m {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(n), state)
	}
}

// BuildInfo returns the contactd_build_info gauge: always 1, labelled with
// the version stamped at build, the Go version and the VCS revision.
func BuildInfo(version string) prometheus.Collector {
	goVersion, revision := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "contactd_build_info",
		Help:        "contactd's build: version, Go version and VCS revision (always 1).",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion, "revision": revision}})
	g.Set(1)
	return g
}
