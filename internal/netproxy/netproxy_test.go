package netproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echo serves a line echo on a loopback port.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T) (*Proxy, net.Conn, *bufio.Reader) {
	t.Helper()
	p, err := Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return p, c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string, wait time.Duration) (string, error) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	return r.ReadString('\n')
}

func TestForwardsPausesAndResumes(t *testing.T) {
	p, c, r := start(t)
	if got, err := roundTrip(t, c, r, "one", 5*time.Second); err != nil || got != "one\n" {
		t.Fatalf("forwarding: got %q, %v", got, err)
	}
	p.Pause()
	if got, err := roundTrip(t, c, r, "two", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("paused proxy answered %q, %v; want silence", got, err)
	}
	// The proxy reads what was sent as soon as it is scheduled; on a busy
	// machine that may be after the client's wait.
	for deadline := time.Now().Add(5 * time.Second); p.Held() != 4 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if p.Held() != 4 {
		t.Errorf("paused proxy holds %d bytes, want the 4 sent", p.Held())
	}
	if p.Conns() != 1 {
		t.Errorf("paused proxy holds %d connections, want the 1 kept open", p.Conns())
	}
	p.Resume()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "two\n" {
		t.Fatalf("after resume: got %q, %v; want the held line", got, err)
	}
}

func TestNewConnectionsWhilePausedAreSilent(t *testing.T) {
	p, _, _ := start(t)
	p.Pause()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(t, c, r, "x", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("paused proxy answered a new connection: %q, %v", got, err)
	}
	p.Resume()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := r.ReadString('\n'); err != nil || got != "x\n" {
		t.Fatalf("after resume: got %q, %v", got, err)
	}
}

func TestDropAndClose(t *testing.T) {
	p, c, r := start(t)
	// A round trip first, so the proxy has taken the connection in.
	if got, err := roundTrip(t, c, r, "first", 5*time.Second); err != nil || got != "first\n" {
		t.Fatalf("forwarding: got %q, %v", got, err)
	}
	p.Drop()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("dropped connection: read err %v, want EOF", err)
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("no new connection after Drop: %v", err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, bufio.NewReader(c2), "again", 5*time.Second); err != nil || got != "again\n" {
		t.Fatalf("after Drop: got %q, %v", got, err)
	}
	p.Pause()
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a paused proxy hangs")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Error("closed proxy still accepts")
	}
}
