package workflow_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// TestConcurrentTransitions races accepts, declines, cancels, new tokens
// and sweeps over the same requests, then checks the invariants: every
// request ends in exactly one state, none is applied twice, and each
// service holds the contacts its applied requests gave it.
func TestConcurrentTransitions(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		c := newClock()
		s := newStore(t, b, c)
		const services = 24
		dir := "contacts:\n"
		for i := 0; i < services; i++ {
			dir += fmt.Sprintf("  - {nic: ad%d-ovh, email: a%d@example.com}\n  - {nic: te%d-ovh, email: t%d@example.com}\n  - {nic: nw%d-ovh, email: n%d@example.com}\n", i, i, i, i, i, i)
		}
		dir += "services:\n"
		for i := 0; i < services; i++ {
			dir += fmt.Sprintf("  - {id: s%d.example, admin: ad%d-ovh, tech: te%d-ovh, billing: ad%d-ovh}\n", i, i, i, i)
		}
		if _, err := s.Import(ctx, []byte(dir)); err != nil {
			t.Fatal(err)
		}
		reqs := make([]*workflow.Request, services)
		// Each approver's email is on its way three times over (three
		// attempts): three tokens that all work.
		toks := map[string][]string{}
		for i := range reqs {
			reqs[i] = created(t, s, fmt.Sprintf("s%d.example", i), fmt.Sprintf("ad%d-ovh", i), map[string]string{"tech": fmt.Sprintf("nw%d-ovh", i)})
			for _, nic := range reqs[i].Approvers() {
				for range 3 {
					toks[reqs[i].ID+nic] = append(toks[reqs[i].ID+nic], token(t, s, reqs[i].ID, nic, workflow.KindValidation))
				}
			}
		}
		var wg sync.WaitGroup
		var ops atomic.Int64
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, 7))
				for i := 0; i < 60; i++ {
					if ops.Add(1) == 16*60*3/4 {
						c.Advance(ttl) // late in the run, time runs out for what is still pending
					}
					r := reqs[rng.IntN(len(reqs))]
					nic := r.Approvers()[rng.IntN(2)]
					switch op := rng.IntN(10); {
					case op < 6:
						if ts := toks[r.ID+nic]; true {
							tok := ts[rng.IntN(len(ts))]
							d := workflow.Accept
							if rng.IntN(8) == 0 {
								d = workflow.Decline
							}
							_, _ = s.Decide(ctx, tok, d, workflow.Web)
						}
					case op < 7:
						_, _ = s.Cancel(ctx, r.ID, r.Requester, workflow.API)
					case op < 8:
						_, _ = s.Apply(ctx, r.ID)
					default:
						_, _ = s.Sweep(ctx, 50)
					}
				}
			}(uint64(w))
		}
		wg.Wait()
		if _, err := s.Sweep(ctx, 1000); err != nil {
			t.Fatal(err)
		}
		final := map[workflow.Status]int{}
		for i, r := range reqs {
			got, err := s.Get(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			final[got.Status]++
			ends, applied := 0, 0
			for _, e := range got.History {
				switch e.Event {
				case "applied":
					applied++
					ends++
				case "declined", "cancelled", "expired", "failed":
					ends++
				}
			}
			if applied > 1 || ends != 1 {
				t.Errorf("%s: %d applies, %d ends: %v", r.ID, applied, ends, events(got))
			}
			switch got.Status {
			case workflow.Pending, workflow.Approved:
				t.Errorf("%s still %s after the sweep", r.ID, got.Status)
			}
			svc, _ := s.GetService(ctx, r.Service)
			want := fmt.Sprintf("te%d-ovh", i)
			if got.Status == workflow.Applied {
				want = fmt.Sprintf("nw%d-ovh", i)
			}
			if svc.Tech != want {
				t.Errorf("%s is %s but %s has tech %s", r.ID, got.Status, r.Service, svc.Tech)
			}
			nEvents := 0
			for _, m := range mails(t, b, r.ID) {
				if len(m) > 6 && m[:6] == "event " {
					nEvents++
				}
			}
			if nEvents != 1 {
				t.Errorf("%s published %d end events, want 1", r.ID, nEvents)
			}
		}
		t.Logf("final states: %v", final)
	})
}
