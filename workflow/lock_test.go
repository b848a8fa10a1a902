package workflow_test

import (
	"context"
	"testing"
	"time"

	"contactd/internal/redistest"
)

// A lock is taken once, by its first asker, until it lapses; its holder
// can tell when it is lost; locks of other names are free meanwhile.
func TestTryLock(t *testing.T) {
	redistest.Each(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b, newClock())
		ctx := context.Background()
		won, held, err := s.TryLock(ctx, "sweep:100", "a", 2*time.Second)
		if err != nil || !won || !held() {
			t.Fatalf("first TryLock = %v, %v; want won and held", won, err)
		}
		for _, owner := range []string{"a", "b"} {
			if again, _, err := s.TryLock(ctx, "sweep:100", owner, 2*time.Second); err != nil || again {
				t.Errorf("TryLock by %s of a held lock = %v, %v; want refused", owner, again, err)
			}
		}
		if other, _, err := s.TryLock(ctx, "sweep:130", "a", 2*time.Second); err != nil || !other {
			t.Errorf("TryLock of another name = %v, %v; want won", other, err)
		}
		// Let the first lock lapse: another daemon takes it, and the
		// first holder is told it lost it.
		if b.Mini != nil {
			b.Mini.FastForward(3 * time.Second)
		} else if err := b.Client.PExpire(ctx, b.Prefix+":lock:sweep:100", time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for held() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // a real server expires on its own clock
		}
		if held() {
			t.Fatal("the lock is still held after it lapsed")
		}
		won2, held2, err := s.TryLock(ctx, "sweep:100", "b", 2*time.Second)
		if err != nil || !won2 || !held2() || held() {
			t.Errorf("after the lapse: b won %v (%v), b holds %v, a holds %v; want true, true, false", won2, err, held2(), held())
		}
	})
}
