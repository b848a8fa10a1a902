// Package metrics holds contactd's Prometheus collectors, shared by the
// components that count and the HTTP server that exposes them.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Registry is the registry /metrics serves.
var Registry = prometheus.NewRegistry()

var (
	// Transitions counts request lifecycle events by event name
	// (created, accepted, declined, applied, failed, expired, cancelled, ...).
	Transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "contactd_transitions_total", Help: "Request lifecycle events, by event.",
	}, []string{"event"})

	// Emails counts outbox deliveries by kind and result (sent, retry, dead).
	Emails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "contactd_emails_total", Help: "Outbox deliveries, by kind and result (sent, retry, dead).",
	}, []string{"kind", "result"})

	// Replies counts received emails by outcome (processed, rejected, ignored).
	Replies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "contactd_replies_total", Help: "Received emails, by outcome (processed, rejected, ignored).",
	}, []string{"outcome"})

	// SweepSeconds observes how long scheduler sweeps take.
	SweepSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "contactd_sweep_duration_seconds", Help: "Duration of scheduler sweeps.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	}, []string{"sweep"})

	// SMTPUp is 1 while the SMTP relay answers, 0 during an outage.
	SMTPUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "contactd_smtp_up", Help: "1 while the SMTP relay can be reached, 0 during an outage.",
	})

	// SMTPSendSeconds observes how long one email takes to hand to the relay.
	SMTPSendSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "contactd_smtp_send_duration_seconds", Help: "Time to hand one email to the SMTP relay.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})

	// LastSend is when an email was last accepted by the relay (unix seconds).
	LastSend = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "contactd_last_send_timestamp_seconds", Help: "When the SMTP relay last accepted an email (unix time).",
	})

	// OutboxTakenBack counts claims of a stopped daemon handed back to ready.
	OutboxTakenBack = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "contactd_outbox_claims_taken_back_total", Help: "Outbox claims whose lease lapsed (their daemon stopped) and that were handed back.",
	})

	// IMAPUp is 1 while the mailbox can be read, 0 during an outage.
	IMAPUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "contactd_imap_up", Help: "1 while the IMAP mailbox can be read, 0 during an outage.",
	})

	// LastPoll is when the mailbox was last read through (unix seconds).
	LastPoll = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "contactd_last_poll_timestamp_seconds", Help: "When the reply mailbox was last read through without error (unix time).",
	})

	// PollInterval is imap.poll_interval, for alerts that compare with it.
	PollInterval = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "contactd_imap_poll_interval_seconds", Help: "The configured imap.poll_interval.",
	})

	// Webhooks counts the events for other systems by result: delivered
	// (on the stream, and posted when a webhook is set), retry, dead.
	Webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "contactd_event_deliveries_total", Help: "Events for other systems (stream and webhook), by result (delivered, retry, dead).",
	}, []string{"result"})

	// Panics counts panics recovered, by component.
	Panics = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "contactd_panics_recovered_total", Help: "Panics recovered without stopping the daemon, by component.",
	}, []string{"component"})

	// HTTPSeconds observes HTTP latency by route pattern and status code.
	HTTPSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "contactd_http_request_duration_seconds", Help: "HTTP request latency, by route and status.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
	}, []string{"route", "code"})
)

func init() {
	Registry.MustRegister(Transitions, Emails, Replies, SweepSeconds, HTTPSeconds, SMTPUp, SMTPSendSeconds, LastSend,
		OutboxTakenBack, Panics, Webhooks, IMAPUp, LastPoll, PollInterval,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
}
