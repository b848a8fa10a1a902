package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"contactd/internal/redistest"
	"contactd/workflow"
)

// The benchmarks run against the real redis-server of the test command
// (CONTACTD_TEST_REDIS), where round trips cost what they cost in
// production. Each has a baseline: the store call alone, in the same run.

func BenchmarkValidationPage(b *testing.B) {
	e := newEnv(b, redistest.Real(b))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	tok := e.token(r.ID, "nw1-ovh")
	b.Run("baseline=LookupToken", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, _, err := e.store.LookupToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GET /v/{token}", func(b *testing.B) {
		for b.Loop() {
			if w := e.do("GET", "/v/"+tok, ""); w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
	b.Run("GET /v/{unknown}", func(b *testing.B) {
		for b.Loop() {
			if w := e.do("GET", "/v/bqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", ""); w.Code != 404 {
				b.Fatal(w.Code)
			}
		}
	})
}

func BenchmarkAPIGetRequest(b *testing.B) {
	e := newEnv(b, redistest.Real(b))
	r := e.create("example.com", "ad1-ovh", map[string]string{"tech": "nw1-ovh"})
	b.Run("baseline=Get", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := e.store.Get(ctx, r.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GET /api/v1/requests/{id}", func(b *testing.B) {
		for b.Loop() {
			if w := e.api("GET", "/api/v1/requests/"+r.ID, ""); w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkHandoverPage serves the validation page of a hand-over of 100,
// 1,000 and 10,000 services, which lists every one of them (SPEC 5), from
// the real Redis. The baseline is the store's lookup of the token alone.
// The aim: under 0.5 s for 10,000.
func BenchmarkHandoverPage(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			e := newEnv(b, redistest.Real(b))
			var dir strings.Builder
			dir.WriteString("services:\n")
			for i := 0; i < n-3; i++ { // the seed's ad1-ovh administers three
				fmt.Fprintf(&dir, "  - {id: site%05d.example, kind: domain, admin: ad1-ovh, tech: te1-ovh, billing: bi1-ovh}\n", i)
			}
			ctx := context.Background()
			if _, err := e.store.Import(ctx, []byte(dir.String())); err != nil {
				b.Fatal(err)
			}
			h, err := e.store.CreateHandover(ctx, workflow.HandoverAsk{Requester: "ad1-ovh", Changes: map[string]string{"tech": "nw1-ovh"}}, workflow.API, "")
			if err != nil || len(h.Requests) != n {
				b.Fatalf("hand-over of %d services: %v", n, err)
			}
			tok := e.handoverToken(h.ID, "nw1-ovh")
			b.Run("baseline=Lookup", func(b *testing.B) {
				for b.Loop() {
					if _, err := e.store.Lookup(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GET /v/{token}", func(b *testing.B) {
				var size int
				for b.Loop() {
					w := e.do("GET", "/v/"+tok, "")
					if w.Code != 200 {
						b.Fatal(w.Code)
					}
					size = w.Body.Len()
				}
				b.ReportMetric(float64(size), "page-bytes")
			})
		})
	}
}
