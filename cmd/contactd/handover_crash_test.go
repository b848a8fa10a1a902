package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// handoverCrashServices is the size of the hand-over the kill test
// applies: as large as one the deciding call carries out itself.
const handoverCrashServices = 1000

// TestHandoverKill9 kills a real contactd serve with SIGKILL while it
// applies a hand-over of 1000 services: first while the page's POST of
// the last accept is carrying the approval to the requests, then as soon
// as the restarted daemon has taken back the job that finishes it. After
// a last restart every request is applied exactly once, every service
// has its new technical contact, and the emails that follow went out
// once per person (a kill between the relay's answer and its record may
// send one again: at most one per kill).
func TestHandoverKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for two claim leases to lapse")
	}
	if os.Getenv(redistest.EnvAddr) == "" {
		t.Skipf("SKIPPED: the kill test needs a real Redis: set %s=host:port (scripts/test.sh starts one)", redistest.EnvAddr)
	}
	be := redistest.Real(t)
	ctx := context.Background()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	sink := startCrashSink(t)
	mails := collect(sink)
	cfg, conf := crashConfig(t, dir, be, sink.port())
	st, err := workflow.NewStore(be.Client, storeOptions(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Import(ctx, agencyDirectory(handoverCrashServices)); err != nil {
		t.Fatal(err)
	}
	d := &child{t: t, bin: bin, conf: conf, addr: strings.TrimPrefix(cfg.HTTP.BaseURL, "http://"),
		log: filepath.Join(dir, "daemon.log"), killsDone: make(chan struct{})}
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.dumpLog()
		}
	})

	// The control panel asks for the hand-over through the daemon's API.
	body := `{"requester":"ag1-ovh","changes":{"tech":"nw1-ovh"}}`
	req, _ := http.NewRequest("POST", cfg.HTTP.BaseURL+"/api/v1/handovers", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer crash-test-token-0123456789")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var h workflow.Handover
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || len(h.Requests) != handoverCrashServices {
		t.Fatalf("create: %d, %d requests, %v", resp.StatusCode, len(h.Requests), err)
	}

	// Each approver gets one validation email, whose Reply-To carries the
	// token.
	var toks map[string]string
	waitFor(t, 30*time.Second, "the two validation emails", func() bool {
		toks = mails.tokens("validation")
		return len(toks) == 2
	})
	if _, err := st.Decide(ctx, toks["agency@example.com"], workflow.Accept, workflow.Email); err != nil {
		t.Fatal(err)
	}

	// Nora accepts on the page; the daemon dies while it applies.
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		link := cfg.HTTP.BaseURL + "/v/" + toks["new1@example.net"]
		req, _ := http.NewRequest("POST", link, strings.NewReader("decision=accept"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", cfg.HTTP.BaseURL)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// The kill comes as soon as one request is applied, in the middle of
	// the others.
	first := h.Requests[0].ID
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if r, err := st.Get(ctx, first); err == nil && r.Status == workflow.Applied {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the accept on the page applied nothing within 30s")
		}
	}
	d.kill()
	<-posted
	t.Logf("first kill: %d of %d requests applied", countApplied(t, st, h.ID), handoverCrashServices)

	// The restarted daemon takes the job back once its claim lapses, and
	// is killed as soon as it holds it.
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, crashLease+crashSlack, "the restarted daemon taking the job back", func() bool {
		es, err := st.ListOutbox(ctx, workflow.OutboxClaimed, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Kind() == workflow.KindJob && e.Handover == h.ID {
				return true
			}
		}
		return countApplied(t, st, h.ID) == handoverCrashServices && outboxEmpty(t, st)
	})
	d.kill()
	t.Logf("second kill: %d of %d requests applied", countApplied(t, st, h.ID), handoverCrashServices)
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*(crashLease+crashSlack), "the hand-over applied and the outbox drained", func() bool {
		got, err := st.GetHandover(ctx, h.ID)
		return err == nil && got.Status == "applied" && outboxEmpty(t, st)
	})
	d.stop()

	var ids []string
	for _, r := range h.Requests {
		ids = append(ids, r.ID)
	}
	checkApplied(t, st, ids)
	for i := 0; i < handoverCrashServices; i++ {
		if svc, err := st.GetService(ctx, fmt.Sprintf("site%04d.example", i)); err != nil || svc.Tech != "nw1-ovh" {
			t.Fatalf("service %d: %+v, %v", i, svc, err)
		}
	}
	got := mails.counts()
	want := map[string]int{"agency@example.com applied": 1, "agency@example.com recorded": 1, "agency@example.com validation": 1,
		"new1@example.net applied": 1, "new1@example.net recorded": 1, "new1@example.net validation": 1, "tech@example.com informed": 1}
	extra := 0
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("unexpected email: %s (%d)", k, n)
		}
		extra += n - want[k]
	}
	for k, n := range want {
		if got[k] < n {
			t.Errorf("no %s email", k)
		}
	}
	t.Logf("emails: %v", got)
	if extra > 2 {
		t.Errorf("%d emails sent again, more than the two kills explain: %v", extra, got)
	}
}

// agencyDirectory has n services siteNNNN.example administered by
// ag1-ovh, with te1-ovh their technical contact, and nw1-ovh the one the
// agency hands them to.
func agencyDirectory(n int) []byte {
	var b strings.Builder
	b.WriteString("contacts:\n")
	b.WriteString("  - {nic: ag1-ovh, email: agency@example.com, name: Agency}\n")
	b.WriteString("  - {nic: te1-ovh, email: tech@example.com, name: Tom Tech}\n")
	b.WriteString("  - {nic: nw1-ovh, email: new1@example.net, name: Nora New}\n")
	b.WriteString("services:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: site%04d.example, kind: domain, admin: ag1-ovh, tech: te1-ovh, billing: ag1-ovh}\n", i)
	}
	return []byte(b.String())
}

// countApplied counts the hand-over's requests applied so far.
func countApplied(t *testing.T, st *workflow.Store, id string) int {
	h, err := st.GetHandover(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range h.Requests {
		if r.Status == workflow.Applied {
			n++
		}
	}
	return n
}

// sinkMail keeps every email the sink received.
type sinkMail struct {
	mu   sync.Mutex
	msgs []*mail.Message
}

func collect(s *crashSink) *sinkMail {
	m := &sinkMail{}
	go func() {
		for e := range s.ch {
			msg, err := mail.ReadMessage(bytes.NewReader(e.data))
			if err != nil {
				continue
			}
			m.mu.Lock()
			m.msgs = append(m.msgs, msg)
			m.mu.Unlock()
		}
	}()
	return m
}

var replyToken = regexp.MustCompile(`\+([a-z2-7]{33})@`)

// tokens maps the recipient of each email of kind to its token.
func (m *sinkMail) tokens(kind string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]string{}
	for _, msg := range m.msgs {
		if msg.Header.Get("X-Contactd-Kind") != kind {
			continue
		}
		to, _ := mail.ParseAddress(msg.Header.Get("To"))
		if mt := replyToken.FindStringSubmatch(msg.Header.Get("Reply-To")); to != nil && mt != nil {
			out[to.Address] = mt[1]
		}
	}
	return out
}

// counts counts the emails received by "to kind".
func (m *sinkMail) counts() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, msg := range m.msgs {
		to, _ := mail.ParseAddress(msg.Header.Get("To"))
		k := msg.Header.Get("X-Contactd-Kind")
		if to != nil {
			k = to.Address + " " + k
		}
		out[k]++
	}
	return out
}
