package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkTimeout bounds each read of the final checks.
const checkTimeout = time.Minute

// failure is one thing a check found wrong.
type failure struct {
	Check  string `json:"check"`
	Detail string `json:"detail"`
}

// The checks, as failures name them.
const (
	checkLost    = "lost"    // a lifecycle that did not end: its emails or its application never came
	checkRequest = "request" // a request's status or history, as the API shows it
	checkEvents  = "events"  // the events stream
	checkService = "service" // a service's contacts
	checkEmails  = "emails"  // the emails about a request
	checkLinks   = "links"   // a delivered link that stopped working before its approver decided
	checkSink    = "sink"    // an email the sink could not file
	checkRun     = "run"     // the run itself: a restart, the profile
)

func failf(check, format string, args ...any) failure {
	return failure{Check: check, Detail: fmt.Sprintf(format, args...)}
}

// forEach runs f on every item, at the run's concurrency, and returns
// what f reported, in the order of the items.
func forEach[T any](e *env, items []T, f func(T) []failure) []failure {
	res := make([][]failure, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for range e.opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res[i] = f(items[i])
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	var out []failure
	for _, r := range res {
		out = append(out, r...)
	}
	return out
}

// checkRequests reads every request the run made through the API: a
// lifecycle's must be applied with one applied event in its history, a
// pending one still pending.
func (e *env) checkRequests(ctx context.Context, lcs, pending []*lifecycle) []failure {
	type item struct {
		lc      *lifecycle
		pending bool
	}
	var items []item
	for _, lc := range lcs {
		if lc.id != "" {
			items = append(items, item{lc, false})
		}
	}
	for _, p := range pending {
		if p.id != "" {
			items = append(items, item{p, true})
		}
	}
	return forEach(e, items, func(it item) []failure {
		r, err := e.request(ctx, it.lc.id, time.Now().Add(checkTimeout))
		if err != nil {
			return []failure{failf(checkRequest, "request %s: %v", it.lc.id, err)}
		}
		if it.pending {
			if r.Status != "pending" {
				return []failure{failf(checkRequest, "request %s, left pending: status %s", r.ID, r.Status)}
			}
			return nil
		}
		return requestFaults(r)
	})
}

// requestFaults says what is wrong with a lifecycle's request as the API
// shows it at the end: it must be applied, once.
func requestFaults(r *apiRequest) []failure {
	var out []failure
	if r.Status != "applied" {
		out = append(out, failf(checkRequest, "request %s: status %s, want applied", r.ID, r.Status))
	}
	if n := r.events("applied", ""); n != 1 {
		out = append(out, failf(checkRequest, "request %s: %d applied events in its history, want 1", r.ID, n))
	}
	return out
}

// checkServices reads every service whose lifecycles all succeeded: its
// technical contact must be the one the last of them named.
func (e *env) checkServices(ctx context.Context) []failure {
	var svcs []*service
	for _, s := range append(append([]*service(nil), e.services...), e.pendings...) {
		if !s.broken {
			svcs = append(svcs, s)
		}
	}
	return forEach(e, svcs, func(s *service) []failure {
		var got struct {
			Admin string `json:"admin"`
			Tech  string `json:"tech"`
		}
		if err := e.getJSON(ctx, "/api/v1/services/"+url.PathEscape(s.id), &got, time.Now().Add(checkTimeout)); err != nil {
			return []failure{failf(checkService, "service %s: %v", s.id, err)}
		}
		if got.Tech != s.tech() || got.Admin != s.admin {
			return []failure{failf(checkService, "service %s: admin %s, tech %s; want admin %s, tech %s", s.id, got.Admin, got.Tech, s.admin, s.tech())}
		}
		return nil
	})
}

// appliedEvents reads the whole events stream ({key_prefix}:events) and
// counts the applied events of each request.
func (e *env) appliedEvents(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	start := "-"
	for {
		msgs, err := e.rdb.XRangeN(ctx, keyPrefix+":events", start, "+", 1000).Result()
		if err != nil {
			return out, err
		}
		countApplied(msgs, out)
		if len(msgs) < 1000 {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// countApplied adds the applied events of msgs to into, by request id.
// Each entry holds the request's JSON (SPEC 9) in its json field, beside
// the event's name and the request's id; the name comes first, as a
// disputed report also carries an applied request's JSON.
func countApplied(msgs []redis.XMessage, into map[string]int) {
	for _, m := range msgs {
		var r struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if js, ok := m.Values["json"].(string); ok {
			_ = json.Unmarshal([]byte(js), &r)
		}
		if id, ok := m.Values["request"].(string); ok {
			r.ID = id
		}
		if ev, ok := m.Values["event"].(string); ok {
			r.Status = ev
		}
		if r.Status == "applied" && r.ID != "" {
			into[r.ID]++
		}
	}
}

// emailFaults compares the emails about request id with the ones wanted
// (each once). With atLeast (the daemon was killed: delivery is at least
// once) copies beyond the first are counted as duplicates, not faults.
func emailFaults(id string, wants []want, got []received, atLeast bool) (faults []failure, dups int) {
	wanted := map[want]int{}
	for _, w := range wants {
		wanted[w]++
	}
	seen := map[want]int{}
	for _, m := range got {
		seen[want{m.kind, m.rcpt}]++
	}
	var keys []want
	for w := range seen {
		keys = append(keys, w)
	}
	for w := range wanted {
		if seen[w] == 0 {
			keys = append(keys, w)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].kind+keys[i].rcpt < keys[j].kind+keys[j].rcpt })
	for _, w := range keys {
		n, want := seen[w], wanted[w]
		switch {
		case want == 0:
			faults = append(faults, failf(checkEmails, "request %s: %d unexpected %s emails to %s", id, n, w.kind, w.rcpt))
		case n < want:
			faults = append(faults, failf(checkEmails, "request %s: no %s email to %s", id, w.kind, w.rcpt))
		case n > want:
			dups += n - want
			if !atLeast {
				faults = append(faults, failf(checkEmails, "request %s: %d %s emails to %s, want %d", id, n, w.kind, w.rcpt, want))
			}
		}
	}
	return faults, dups
}
