package mailer

import "testing"

// The webhook signature is what a receiver computes with any HMAC tool.
func TestSignKnownVector(t *testing.T) {
	got := Sign("key", []byte("The quick brown fox jumps over the lazy dog"))
	want := "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}
