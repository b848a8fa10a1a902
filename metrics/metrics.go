// Package metrics holds contactd's Prometheus collectors. A daemon makes
// one Metrics with New and passes it to each component, like any other
// dependency; the HTTP server serves its Registry. Nothing is registered
// in package globals, so tests and several daemons in one process each
// have their own.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of collectors of one daemon.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry

	// Transitions counts request lifecycle events by event name
	// (created, accepted, declined, applied, failed, expired, cancelled, ...).
	Transitions *prometheus.CounterVec
	// Emails counts outbox deliveries by kind and result (sent, retry,
	// waiting, dead, skipped).
	Emails *prometheus.CounterVec
	// Webhooks counts the events for other systems by result: delivered
	// (on the stream, and posted when a webhook is set), retry, dead.
	Webhooks *prometheus.CounterVec
	// Replies counts received emails by outcome (processed, rejected, ignored).
	Replies *prometheus.CounterVec
	// SweepSeconds observes how long scheduler jobs take.
	SweepSeconds *prometheus.HistogramVec
	// HTTPSeconds observes HTTP latency by route pattern and status code.
	HTTPSeconds *prometheus.HistogramVec
	// SMTPUp is 1 while the SMTP relay answers, 0 during an outage.
	SMTPUp prometheus.Gauge
	// SMTPSendSeconds observes how long one email takes to hand to the relay.
	SMTPSendSeconds prometheus.Histogram
	// LastSend is when an email was last accepted by the relay (unix seconds).
	LastSend prometheus.Gauge
	// IMAPUp is 1 while the mailbox can be read, 0 during an outage.
	IMAPUp prometheus.Gauge
	// LastPoll is when the mailbox was last read through (unix seconds).
	LastPoll prometheus.Gauge
	// PollInterval is imap.poll_interval, for alerts that compare with it.
	PollInterval prometheus.Gauge
	// OutboxTakenBack counts claims of a stopped daemon handed back to ready.
	OutboxTakenBack prometheus.Counter
	// Panics counts panics recovered, by component.
	Panics *prometheus.CounterVec
	// PoisonMessages counts the received messages set aside after every
	// attempt at acting on them failed.
	PoisonMessages prometheus.Counter
}

// New returns a daemon's collectors, registered in a registry of their
// own with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactd_transitions_total", Help: "Request lifecycle events, by event.",
		}, []string{"event"}),
		Emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactd_emails_total", Help: "Outbox deliveries, by kind and result (sent, retry, waiting, dead, skipped).",
		}, []string{"kind", "result"}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactd_event_deliveries_total", Help: "Events for other systems (stream and webhook), by result (delivered, retry, dead).",
		}, []string{"result"}),
		Replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactd_replies_total", Help: "Received emails, by outcome (processed, rejected, ignored).",
		}, []string{"outcome"}),
		SweepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "contactd_sweep_duration_seconds", Help: "Duration of scheduler sweeps.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"sweep"}),
		HTTPSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "contactd_http_request_duration_seconds", Help: "HTTP request latency, by route and status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"route", "code"}),
		SMTPUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "contactd_smtp_up", Help: "1 while the SMTP relay can be reached, 0 during an outage.",
		}),
		SMTPSendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "contactd_smtp_send_duration_seconds", Help: "Time to hand one email to the SMTP relay.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		LastSend: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "contactd_last_send_timestamp_seconds", Help: "When the SMTP relay last accepted an email (unix time).",
		}),
		IMAPUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "contactd_imap_up", Help: "1 while the IMAP mailbox can be read, 0 during an outage.",
		}),
		LastPoll: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "contactd_last_poll_timestamp_seconds", Help: "When the reply mailbox was last read through without error (unix time).",
		}),
		PollInterval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "contactd_imap_poll_interval_seconds", Help: "The configured imap.poll_interval.",
		}),
		OutboxTakenBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "contactd_outbox_claims_taken_back_total", Help: "Outbox claims whose lease lapsed (their daemon stopped) and that were handed back.",
		}),
		Panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactd_panics_recovered_total", Help: "Panics recovered without stopping the daemon, by component.",
		}, []string{"component"}),
	}
	m.PoisonMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "contactd_poison_messages_total",
		Help: "Received messages set aside in imap.rejected_mailbox after three failed attempts at acting on them.",
	})
	m.Registry.MustRegister(m.PoisonMessages)
	m.Registry.MustRegister(m.Transitions, m.Emails, m.Webhooks, m.Replies, m.SweepSeconds, m.HTTPSeconds,
		m.SMTPUp, m.SMTPSendSeconds, m.LastSend, m.IMAPUp, m.LastPoll, m.PollInterval, m.OutboxTakenBack, m.Panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Or returns m, or a new Metrics nobody serves when m is nil: a component
// made without metrics still counts, into a registry of its own.
func Or(m *Metrics) *Metrics {
	if m == nil {
		return New()
	}
	return m
}

// Register adds a collector (a gauge read from Redis at each scrape, say)
// to the registry, replacing one of the same name.
func (m *Metrics) Register(c prometheus.Collector) {
	if err := m.Registry.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			m.Registry.Unregister(dup.ExistingCollector)
			_ = m.Registry.Register(c)
		}
	}
}
