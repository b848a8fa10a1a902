// Package metrics holds contactd's Prometheus collectors. A daemon makes
// one Metrics with New, naming the components it runs, and passes it to
// each of them, like any other dependency; the HTTP server serves its
// Registry. A process exports only the metrics of the components it
// runs, and every counter exists from the start, at 0, with the label
// values the daemon names (Seed). The figures that live in Redis are read
// by one Refresher on an interval and served from memory, so a scrape
// never touches Redis and never fails. Nothing is registered in package
// globals, so tests and several daemons in one process each have their
// own.
package metrics

import (
	"errors"
	"slices"

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
	// SMTPSendSeconds observes how long one email takes to hand to the
	// relay: one SMTP transaction (MAIL FROM to the relay's reply after
	// the data) that took place, accepted or refused. A connection that
	// could not be opened is no transaction and is not observed: it is
	// the relay's outage (SMTPUp), not a send's duration.
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
	// OutboxClaimsLost counts claims this daemon found taken over by
	// another (it stalled past its lease): entries it neither sent nor
	// recorded.
	OutboxClaimsLost prometheus.Counter
	// Panics counts panics recovered, by component.
	Panics *prometheus.CounterVec
	// PoisonMessages counts the received messages set aside after every
	// attempt at acting on them failed.
	PoisonMessages prometheus.Counter

	// components are those whose metrics the registry exports.
	components []Component
	// store holds the figures read from Redis (see Refresher).
	store *storeFigures
}

// Component names a part of the daemon; a process exports the metrics of
// the components it runs.
type Component string

// The daemon's components, as `contactd serve --components` names them.
const (
	HTTP      Component = "http"
	Mailer    Component = "mailer"
	Inbox     Component = "inbox"
	Scheduler Component = "scheduler"
)

// Components lists every component.
var Components = []Component{HTTP, Mailer, Inbox, Scheduler}

// The results contactd_emails_total and contactd_event_deliveries_total
// count, as the mailer names them.
var (
	EmailResults    = []string{"sent", "retry", "waiting", "dead", "skipped"}
	DeliveryResults = []string{"delivered", "retry", "dead"}
)

// New returns the collectors of a process running the components named
// (every component when none is), registered in a registry of their own
// with the Go and process collectors. Every process exports the figures
// read from Redis, the lifecycle events and the panics recovered; the
// others belong to one component: the HTTP latencies to http, the
// outbox, the deliveries and the relay's state to mailer, the replies
// and the mailbox's state to inbox, the sweeps' durations to scheduler.
func New(components ...Component) *Metrics {
	if len(components) == 0 {
		components = Components
	}
	m := &Metrics{
		Registry:   prometheus.NewRegistry(),
		components: slices.Clone(components),
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
			Name: "contactd_smtp_send_duration_seconds", Help: "Time of one SMTP transaction with the relay (accepted or refused); failed connection attempts are not counted.",
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
		OutboxClaimsLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "contactd_outbox_claims_lost_total", Help: "Outbox claims this daemon found taken over by another after it stalled past its lease; their entries were left to the new owner.",
		}),
		Panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "contactd_panics_recovered_total", Help: "Panics recovered without stopping the daemon, by component.",
		}, []string{"component"}),
	}
	m.PoisonMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "contactd_poison_messages_total",
		Help: "Received messages set aside in imap.rejected_mailbox after three failed attempts at acting on them.",
	})
	m.store = newStoreFigures()
	m.Registry.MustRegister(m.Transitions, m.Panics, m.store,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for c, cs := range map[Component][]prometheus.Collector{
		HTTP:      {m.HTTPSeconds},
		Mailer:    {m.Emails, m.Webhooks, m.SMTPUp, m.SMTPSendSeconds, m.LastSend, m.OutboxTakenBack, m.OutboxClaimsLost},
		Inbox:     {m.Replies, m.IMAPUp, m.LastPoll, m.PollInterval, m.PoisonMessages},
		Scheduler: {m.SweepSeconds},
	} {
		if m.Runs(c) {
			m.Registry.MustRegister(cs...)
		}
	}
	return m
}

// Runs reports whether the process runs component c, that is whether its
// metrics are exported.
func (m *Metrics) Runs(c Component) bool { return slices.Contains(m.components, c) }

// Vocabulary names the label values the counters start with, at 0, so
// that rate(), increase() and absent() see every series from the start,
// before the first event of its kind.
type Vocabulary struct {
	// Events are the lifecycle events contactd_transitions_total counts.
	Events []string
	// Kinds are the email kinds of contactd_emails_total.
	Kinds []string
	// Outcomes are the outcomes of contactd_replies_total.
	Outcomes []string
}

// Seed creates, at 0, every series of the counters of the components the
// process runs: the transitions by event, the emails by kind and result,
// the event deliveries by result, the replies by outcome and the panics
// recovered by component.
func (m *Metrics) Seed(v Vocabulary) {
	for _, e := range v.Events {
		m.Transitions.WithLabelValues(e)
	}
	for _, c := range m.components {
		m.Panics.WithLabelValues(string(c))
	}
	if m.Runs(Mailer) {
		for _, k := range v.Kinds {
			for _, r := range EmailResults {
				m.Emails.WithLabelValues(k, r)
			}
		}
		for _, r := range DeliveryResults {
			m.Webhooks.WithLabelValues(r)
		}
	}
	if m.Runs(Inbox) {
		for _, o := range v.Outcomes {
			m.Replies.WithLabelValues(o)
		}
	}
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
