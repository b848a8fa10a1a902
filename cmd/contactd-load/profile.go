package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profileLines is how many functions the summaries show.
const profileLines = 25

// startProfile asks the first daemon for a CPU profile of the coming
// seconds and returns a function that waits for it to be saved.
func (e *env) startProfile(ctx context.Context, rep *report) func() error {
	secs := e.opt.PprofSeconds
	if secs <= 0 {
		secs = 10
		if e.opt.Count == 0 {
			secs = max(1, int(e.opt.Duration.Seconds()))
		}
	}
	file := e.opt.PprofOut
	if file == "" {
		file = filepath.Join(os.TempDir(), "contactd-load-cpu-"+time.Now().UTC().Format("20060102-150405")+".pprof")
	}
	rep.Profile.File, rep.Profile.Seconds = file, secs
	e.say("CPU profile of the daemon at %s for %ds", e.daemons[0].base, secs)
	done := make(chan error, 1)
	go func() { done <- fetchProfile(ctx, e.daemons[0].pprof, secs, file) }()
	return func() error { return <-done }
}

func fetchProfile(ctx context.Context, addr string, secs int, file string) error {
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: time.Duration(secs)*time.Second + time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: status %d: %s", u, resp.StatusCode, clip(b))
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// summariseProfile fills the report with the profile's top functions,
// by own time and by cumulated time, as `go tool pprof -top` gives them.
func (e *env) summariseProfile(ctx context.Context, rep *report) {
	if _, err := os.Stat(rep.Profile.File); err != nil {
		return
	}
	var err error
	if rep.Profile.Top, err = pprofTop(ctx, e.bin, rep.Profile.File, false); err == nil {
		rep.Profile.TopCum, err = pprofTop(ctx, e.bin, rep.Profile.File, true)
	}
	if err != nil {
		e.say("summarising the profile: %v; read it with: go tool pprof -top %s %s", err, e.bin, rep.Profile.File)
	}
	if e.opt.Keep || e.opt.Bin != "" {
		rep.Profile.Binary = e.bin
	}
}

// pprofTop runs `go tool pprof -top` and returns its lines from the
// summary on (the file, type and time lines dropped).
func pprofTop(ctx context.Context, bin, file string, cum bool) ([]string, error) {
	args := []string{"tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", profileLines)}
	if cum {
		args = append(args, "-cum")
	}
	out, err := exec.CommandContext(ctx, "go", append(args, bin, file)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		lines = append(lines, l)
	}
	return lines, nil
}
