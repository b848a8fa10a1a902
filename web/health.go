package web

import (
	"context"
	"math"
	"net/http"
	"time"
)

// healthz is GET /healthz: the process is alive.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// readiness is the body of /readyz. Ages are in seconds, null when the
// component has not succeeded yet or does not run in this process.
type readiness struct {
	Status         string   `json:"status"`
	Redis          string   `json:"redis"`
	LastPollAgeSec *float64 `json:"last_poll_age_seconds"`
	LastSendAgeSec *float64 `json:"last_send_age_seconds"`
	DeadLetters    *int64   `json:"dead_letters,omitempty"`
}

// readyz is GET /readyz: 200 when Redis answers PING, else 503.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := readiness{Status: "ready", Redis: "ok",
		LastPollAgeSec: s.age(s.p.LastPoll), LastSendAgeSec: s.age(s.p.LastSend)}
	status := http.StatusOK
	if err := s.p.Store.Ping(ctx); err != nil {
		// The outage itself is logged by the daemon's Redis tracker, once,
		// not at each probe of a load balancer.
		s.log.Debug("readiness: redis unreachable", "err", err)
		body.Status, body.Redis, status = "unavailable", "unreachable", http.StatusServiceUnavailable
	} else if s.p.DeadLetters != nil {
		if n, err := s.p.DeadLetters(ctx); err == nil {
			body.DeadLetters = &n
		}
	}
	writeJSON(w, status, body)
}

// age returns how long ago last() was, rounded to the millisecond.
func (s *Server) age(last func() time.Time) *float64 {
	if last == nil {
		return nil
	}
	t := last()
	if t.IsZero() {
		return nil
	}
	v := math.Round(s.p.Now().Sub(t).Seconds()*1000) / 1000
	return &v
}
