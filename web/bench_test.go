package web_test

import (
	"context"
	"testing"

	"contactd/internal/redistest"
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
