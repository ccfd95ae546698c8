package server

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/annexa-dev/annexa/server/store"
)

// metrics lives on its own registry per server, not the global one, so two
// servers in one test process do not collide.
type metrics struct {
	reg           *prometheus.Registry
	accepted      prometheus.Counter
	duplicates    prometheus.Counter
	rejects       *prometheus.CounterVec
	ingestLatency prometheus.Histogram
	groupSize     prometheus.Histogram
	logSize       prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "annexa_ingest_records_total", Help: "Records accepted into the log.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "annexa_ingest_duplicates_total", Help: "Records re-sent that the log already held (idempotent).",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "annexa_ingest_rejects_total", Help: "Rejected requests and records, by reason.",
		}, []string{"reason"}),
		ingestLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "annexa_ingest_batch_seconds", Help: "Time to verify and durably commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "annexa_ingest_group_batches", Help: "Agents' batches stored by one commit (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 7),
		}),
		logSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "annexa_log_size", Help: "Leaves in the transparency log.",
		}),
	}
	m.reg.MustRegister(m.accepted, m.duplicates, m.rejects, m.ingestLatency, m.groupSize, m.logSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) reject(reason string) { m.rejects.WithLabelValues(reason).Inc() }

func (m *metrics) observeDB(db *store.DB) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := db.LogSize(ctx); err == nil {
		m.logSize.Set(float64(n))
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
