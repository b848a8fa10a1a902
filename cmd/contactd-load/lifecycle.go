package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxFailures stops a run from starting new lifecycles once this many
// have failed: what is wrong shows by then.
const maxFailures = 20

// lifecycle is one request the run made and what became of it.
type lifecycle struct {
	id       string
	svc      *service
	from, to string // the technical contact before and after
	started  time.Time
	// latency runs from just before the API call to the arrival of the
	// last of its seven emails.
	latency time.Duration
	err     error
}

// lifecycleWants are the seven emails of a lifecycle: validation to
// each approver (the admin who asks and the new technical contact),
// recorded to each after its decision, applied to each, and informed to
// the technical contact replaced.
func lifecycleWants(admin, from, to string) []want {
	a, o, n := mailOf(admin), mailOf(from), mailOf(to)
	return []want{{"validation", a}, {"validation", n}, {"recorded", a}, {"recorded", n},
		{"applied", a}, {"applied", n}, {"informed", o}}
}

// runLifecycles runs n lifecycles (or, with n = 0, starts them until
// until) at the run's concurrency, each worker taking a free service at
// a time, and returns them once every one started has ended.
func (e *env) runLifecycles(ctx context.Context, n int, until time.Time) []*lifecycle {
	var (
		mu      sync.Mutex
		out     []*lifecycle
		started atomic.Int64
		wg      sync.WaitGroup
	)
	for range e.opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e.mayStart(ctx, n, until) {
				var svc *service
				select {
				case svc = <-e.pool:
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
					continue
				}
				if n > 0 && started.Add(1) > int64(n) {
					e.pool <- svc
					return
				}
				lc := e.lifecycle(ctx, svc)
				if lc.err != nil {
					e.failed.Add(1)
				} else {
					e.pool <- svc
				}
				mu.Lock()
				out = append(out, lc)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// mayStart tells whether a worker may start one more lifecycle.
func (e *env) mayStart(ctx context.Context, n int, until time.Time) bool {
	if ctx.Err() != nil || e.failed.Load() >= maxFailures || int(e.failed.Load()) >= len(e.services) {
		return false
	}
	return n > 0 || time.Now().Before(until)
}

// lifecycle runs one lifecycle on svc, which it holds until it returns.
// A failed lifecycle leaves its service out of the pool (an open request
// may hold it).
func (e *env) lifecycle(ctx context.Context, svc *service) *lifecycle {
	lc := &lifecycle{svc: svc, from: svc.tech(), to: svc.other(), started: time.Now()}
	lc.err = e.drive(ctx, lc, lc.started.Add(e.opt.Timeout))
	if lc.err != nil {
		svc.broken = true
	} else {
		svc.cur = 1 - svc.cur
	}
	return lc
}

func (e *env) drive(ctx context.Context, lc *lifecycle, deadline time.Time) error {
	id, err := e.create(ctx, lc.svc, lc.to, deadline)
	if err != nil {
		return err
	}
	lc.id = id
	box := e.track.box(id)
	ws := lifecycleWants(lc.svc.admin, lc.from, lc.to)
	if ms, err := box.wait(ctx, deadline, func(ms []received) bool { return has(ms, ws[:2]...) }); err != nil {
		return fmt.Errorf("request %s: waiting for both validation emails: %w (missing %s)", id, err, missing(ms, ws[:2]))
	}
	for _, nic := range []string{lc.svc.admin, lc.to} {
		if err := e.decide(ctx, id, nic, box, deadline); err != nil {
			return err
		}
	}
	ms, err := box.wait(ctx, deadline, func(ms []received) bool { return has(ms, ws...) })
	if err != nil {
		return fmt.Errorf("request %s: waiting for the emails that follow the decisions: %w (missing %s)", id, err, missing(ms, ws))
	}
	lc.latency = lastOf(ms, ws...).Sub(lc.started)
	return nil
}

// missing names the wanted emails not among ms.
func missing(ms []received, ws []want) string {
	var out []string
	for _, w := range ws {
		if count(ms, w) == 0 {
			out = append(out, w.kind+" to "+w.rcpt)
		}
	}
	return strings.Join(out, ", ")
}

// create asks for svc's technical contact to become to, through the
// API of one daemon after another. When an attempt got no answer (the
// daemon was killed), the next may be refused as a conflict with the
// request that attempt made: that request is the one.
func (e *env) create(ctx context.Context, svc *service, to string, deadline time.Time) (string, error) {
	body, _ := json.Marshal(map[string]any{"service": svc.id, "requester": svc.admin, "changes": map[string]string{"tech": to}})
	var lost error
	for try := 0; ; try++ {
		d := e.daemons[int(e.turn.Add(1))%len(e.daemons)]
		status, data, err := e.call(ctx, "POST", d.base+"/api/v1/requests", body)
		if err != nil {
			lost = err
			if err := pause(ctx, deadline, try); err != nil {
				return "", fmt.Errorf("creating a request on %s: %w (last: %v)", svc.id, err, lost)
			}
			continue
		}
		var r struct {
			ID    string `json:"id"`
			Error struct {
				Code      string `json:"code"`
				RequestID string `json:"request_id"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &r)
		switch {
		case status == http.StatusCreated && r.ID != "":
			return r.ID, nil
		case status == http.StatusConflict && lost != nil && r.Error.RequestID != "":
			return r.Error.RequestID, nil
		case status == http.StatusServiceUnavailable:
			if err := pause(ctx, deadline, try); err != nil {
				return "", fmt.Errorf("creating a request on %s: %w (503)", svc.id, err)
			}
			continue
		}
		return "", fmt.Errorf("creating a request on %s: status %d: %s", svc.id, status, clip(data))
	}
}

// decide plays the approver nic: it opens the link of every copy of its
// validation email received so far, each of which must still work until
// the approver decides (an email sent again after a crash must not kill
// the link of the copy already delivered), then accepts on the page of
// the first copy, as a person reading the oldest email would. A link
// that answers anything but 200 to either is a failure; the approver then
// goes on with a copy that works, waiting for a new one if none does, so
// that the run goes on.
func (e *env) decide(ctx context.Context, id, nic string, box *mailbox, deadline time.Time) error {
	w := want{"validation", mailOf(nic)}
	dead := map[string]bool{}
	for {
		copies := of(box.snapshot(), w)
		use := -1
		for i, c := range copies {
			if dead[c.token] {
				continue
			}
			status, err := e.retry(ctx, deadline, func() (int, error) { return e.page(ctx, "GET", c.link) })
			if err != nil {
				return fmt.Errorf("request %s: opening the link of %s: %w", id, nic, err)
			}
			if status != http.StatusOK {
				dead[c.token] = true
				e.fail(checkLinks, "request %s: the link of copy %d of %d of the validation email to %s answered %d to GET before %s decided",
					id, i+1, len(copies), nic, status, nic)
				continue
			}
			if use < 0 {
				use = i
			}
		}
		if use < 0 {
			more := func(ms []received) bool { return len(of(ms, w)) > len(copies) }
			if _, err := box.wait(ctx, deadline, more); err != nil {
				return fmt.Errorf("request %s: none of the %d validation emails to %s has a working link", id, len(copies), nic)
			}
			continue
		}
		status, err := e.accept(ctx, id, nic, copies[use].link, deadline)
		if err != nil || status == http.StatusOK {
			return err
		}
		dead[copies[use].token] = true
		e.fail(checkLinks, "request %s: the link of copy %d of %d of the validation email to %s answered %d to POST decision=accept, after 200 to GET",
			id, use+1, len(copies), nic, status)
	}
}

// accept posts the page's form with decision=accept and returns the
// status: 200, or 404 or 410 for a link that does not work; any other
// answer is an error. When a post got no answer (the daemon was killed)
// and the next finds the link used, the request itself says whether the
// first was recorded (then the status is 200).
func (e *env) accept(ctx context.Context, id, nic, link string, deadline time.Time) (int, error) {
	lost := false
	for try := 0; ; try++ {
		status, err := e.page(ctx, "POST", link)
		if err != nil {
			lost = true
			if err := pause(ctx, deadline, try); err != nil {
				return 0, fmt.Errorf("request %s: accepting as %s: %w", id, nic, err)
			}
			continue
		}
		switch status {
		case http.StatusOK:
			return status, nil
		case http.StatusServiceUnavailable:
			if err := pause(ctx, deadline, try); err != nil {
				return 0, fmt.Errorf("request %s: accepting as %s: %w (503)", id, nic, err)
			}
			continue
		case http.StatusGone, http.StatusNotFound:
			if lost {
				r, err := e.request(ctx, id, deadline)
				if err != nil {
					return 0, err
				}
				if r.Approvals[nic].Status == "accepted" {
					return http.StatusOK, nil
				}
			}
			return status, nil
		}
		return 0, fmt.Errorf("request %s: posting %s's acceptance answered %d", id, nic, status)
	}
}

// page is what a browser does with a link: GET it (opened from an email:
// Sec-Fetch-Site none), or POST its form (same origin). It returns the
// status; an error means no answer.
func (e *env) page(ctx context.Context, method, link string) (int, error) {
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("decision=accept")
	}
	req, err := http.NewRequestWithContext(ctx, method, link, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Sec-Fetch-Site", "none")
	if method == "POST" {
		u, err := url.Parse(link)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", u.Scheme+"://"+u.Host)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// call is one API call with the run's token; it returns the status and
// the body, or an error when there was no answer.
func (e *env) call(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.apiToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// apiRequest is what the run reads of GET /api/v1/requests/{id}.
type apiRequest struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Approvals map[string]struct {
		Status string `json:"status"`
	} `json:"approvals"`
	History []struct {
		Event string `json:"event"`
		NIC   string `json:"nic"`
	} `json:"history"`
}

// events counts the history events of a name (and of a NIC, when given).
func (r *apiRequest) events(name, nic string) int {
	n := 0
	for _, h := range r.History {
		if h.Event == name && (nic == "" || h.NIC == nic) {
			n++
		}
	}
	return n
}

// request reads a request through the API of any daemon that answers.
func (e *env) request(ctx context.Context, id string, deadline time.Time) (*apiRequest, error) {
	var r apiRequest
	err := e.getJSON(ctx, "/api/v1/requests/"+url.PathEscape(id), &r, deadline)
	return &r, err
}

// getJSON reads one API resource, trying daemon after daemon while none
// answers (or answers 503).
func (e *env) getJSON(ctx context.Context, path string, into any, deadline time.Time) error {
	for try := 0; ; try++ {
		d := e.daemons[try%len(e.daemons)]
		status, data, err := e.call(ctx, "GET", d.base+path, nil)
		if err == nil && status == http.StatusOK {
			return json.Unmarshal(data, into)
		}
		if err == nil && status != http.StatusServiceUnavailable {
			return fmt.Errorf("GET %s: status %d: %s", path, status, clip(data))
		}
		if err := pause(ctx, deadline, try); err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
	}
}

// retry calls f until it gets an answer (a daemon being restarted
// answers nothing for a moment).
func (e *env) retry(ctx context.Context, deadline time.Time, f func() (int, error)) (int, error) {
	for try := 0; ; try++ {
		status, err := f()
		if err == nil {
			return status, nil
		}
		if perr := pause(ctx, deadline, try); perr != nil {
			return 0, fmt.Errorf("%w (last: %v)", perr, err)
		}
	}
}

// pause waits before another try: 20 ms doubling to 500 ms, never past
// the deadline.
func pause(ctx context.Context, deadline time.Time, try int) error {
	d := min(20*time.Millisecond<<min(try, 5), 500*time.Millisecond)
	if time.Now().Add(d).After(deadline) {
		return errTimeout
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail records a failure seen while the run goes on.
func (e *env) fail(check, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = append(e.failures, failf(check, format, args...))
}

func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
