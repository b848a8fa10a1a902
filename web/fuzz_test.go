package web_test

import (
	"encoding/json"
	"testing"

	"contactd/internal/redistest"
)

// FuzzAPIBodies sends arbitrary bodies to every route that reads one: the
// answer is never a 500, and an error is always the JSON error shape.
func FuzzAPIBodies(f *testing.F) {
	for _, s := range []string{
		`{"service":"example.com","requester":"ad1-ovh","changes":{"tech":"nw1-ovh"}}`,
		`{"nic":"ad1-ovh"}`, `{"email":"a@b.example","name":"A","language":"fr","payment_ok":false}`,
		`{"kind":"x","admin":"ad1-ovh","tech":"ad1-ovh","billing":"bi1-ovh"}`,
		`{`, `[]`, `null`, `""`, `{"changes":[]}`, `{"changes":{"tech":null}}`, `{} {}`, "\x00\xff",
		`{"service":"a{b}","requester":"ad1-ovh","changes":{"admin":"AD1-OVH"}}`,
		`{"nic":"ad1-ovh","nic":"te1-ovh"}`, `{"payment_ok":1e999}`,
	} {
		f.Add(s)
	}
	e := newEnv(f, redistest.Mini(f))
	r := e.create("example.com", "ad1-ovh", map[string]string{"billing": "nw2-ovh"})
	routes := []struct{ method, path string }{
		{"POST", "/api/v1/requests"},
		{"POST", "/api/v1/requests/" + r.ID + "/resend"},
		{"POST", "/api/v1/requests/" + r.ID + "/cancel"},
		{"PUT", "/api/v1/contacts/zz1-ovh"},
		{"PUT", "/api/v1/services/fuzz.example"},
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := *e
		e.t = t
		for _, rt := range routes {
			w := e.api(rt.method, rt.path, body)
			if w.Code >= 500 {
				t.Fatalf("%s %s with %q = %d: %s", rt.method, rt.path, body, w.Code, w.Body)
			}
			if w.Code >= 400 {
				errorOf(t, w)
			} else if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %s = %d with a body that is not JSON: %q", rt.method, rt.path, w.Code, w.Body)
			}
		}
	})
}
