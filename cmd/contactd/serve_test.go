package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestServeStopsOnSIGTERM runs the real binary: it serves, and on SIGTERM
// it stops and exits 0 in bounded time, even with its mail servers away.
func TestServeStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "contactd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "config.yaml")
	os.WriteFile(conf, []byte(`redis: {embedded: true}
smtp: {host: 127.0.0.1, port: 1, tls: none}
imap: {host: 127.0.0.1, port: 1, tls: none, username: u, password: p}
http: {listen: "`+addr+`", base_url: "http://`+addr+`"}
log: {format: json}
`), 0o600)
	cmd := exec.Command(bin, "serve", "--config", conf)
	logFile, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	up := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			up = resp.StatusCode == http.StatusOK
			break
		}
	}
	if !up {
		t.Fatal("the daemon did not answer /healthz")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("exit status %d after SIGTERM; log:\n%s", exit.ExitCode(), log)
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("still running 40s after SIGTERM")
	}
}
