package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// rawSMTPEnv, when set (to a rawJob in JSON), makes this program the raw
// go-mail sender instead of the load tool: it runs as a process of its
// own so that its CPU time is its alone, as the daemon's is.
const rawSMTPEnv = "CONTACTD_LOAD_RAW_SMTP"

// rawJob is what the raw sender is asked to do.
type rawJob struct {
	Addr  string `json:"addr"`
	Conns int    `json:"conns"`
	Msgs  int    `json:"msgs"`
	Size  int    `json:"size"`
}

// rawSMTPResult is the raw go-mail baseline.
type rawSMTPResult struct {
	Msgs            int     `json:"msgs"`
	Conns           int     `json:"conns"`
	Bytes           int     `json:"bytes_per_msg"`
	Seconds         float64 `json:"seconds"`
	PerSecond       float64 `json:"msgs_per_second"`
	CPUMicrosPerMsg float64 `json:"cpu_us_per_msg"`
}

// rawSMTP runs the raw sender as a child process of this program.
func (e *env) rawSMTP(ctx context.Context, job rawJob) (rawSMTPResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return rawSMTPResult{}, err
	}
	spec, _ := json.Marshal(job)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), rawSMTPEnv+"="+string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return rawSMTPResult{}, fmt.Errorf("raw go-mail sender: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res rawSMTPResult
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("raw go-mail sender's output %q: %w", out, err)
	}
	return res, nil
}

// rawSMTPChild is the raw sender's main: it reads its job from the
// environment and prints its result as JSON.
func rawSMTPChild(stdout, stderr io.Writer) int {
	var job rawJob
	if err := json.Unmarshal([]byte(os.Getenv(rawSMTPEnv)), &job); err != nil {
		fmt.Fprintln(stderr, "raw sender: bad job:", err)
		return 2
	}
	res, err := sendRaw(context.Background(), job)
	if err != nil {
		fmt.Fprintln(stderr, "raw sender:", err)
		return 1
	}
	_ = json.NewEncoder(stdout).Encode(res)
	return 0
}

// sendRaw sends job.Msgs messages of about job.Size bytes over
// job.Conns connections, each a go-mail client kept open (no NOOP
// before each message, as the mailer), a message built for each send.
func sendRaw(ctx context.Context, job rawJob) (rawSMTPResult, error) {
	res := rawSMTPResult{Msgs: job.Msgs, Conns: job.Conns}
	host, portStr, err := net.SplitHostPort(job.Addr)
	if err != nil {
		return res, err
	}
	port, _ := strconv.Atoi(portStr)
	pad, size, err := padFor(job.Size)
	if err != nil {
		return res, err
	}
	res.Bytes = size
	clients := make([]*gomail.Client, job.Conns)
	for i := range clients {
		c, err := gomail.NewClient(host, gomail.WithPort(port), gomail.WithTLSPolicy(gomail.NoTLS),
			gomail.WithoutNoop(), gomail.WithTimeout(30*time.Second))
		if err != nil {
			return res, err
		}
		if err := c.DialWithContext(ctx); err != nil {
			return res, err
		}
		defer c.Close()
		clients[i] = c
	}
	var left atomic.Int64
	left.Store(int64(job.Msgs))
	var firstErr error
	var once sync.Once
	cpu0, t0 := selfCPU(), time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				m, err := rawMsg(pad)
				if err == nil {
					err = c.Send(m)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(t0), selfCPU()-cpu0
	if firstErr != nil {
		return res, firstErr
	}
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(job.Msgs) / elapsed.Seconds()
	res.CPUMicrosPerMsg = micros(cpu) / float64(job.Msgs)
	return res, nil
}

// rawMsg is a message like the daemon's: text and HTML alternatives,
// each padded with pad bytes of prose.
func rawMsg(pad int) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From("Contacts <contacts@example.com>"); err != nil {
		return nil, err
	}
	if err := m.To("raw@example.com"); err != nil {
		return nil, err
	}
	m.Subject("Raw baseline message")
	m.SetGenHeader("X-Contactd-Kind", rawKind)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetMessageID()
	m.SetDate()
	text := prose(pad)
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, "<p>"+text+"</p>")
	return m, nil
}

// prose is n bytes of short lines of words.
func prose(n int) string {
	const line = "The quick brown fox jumps over the lazy dog, again and again.\n"
	s := strings.Repeat(line, n/len(line)+1)
	return s[:n]
}

// padFor finds the padding that makes a raw message about size bytes
// long, and the size it gives.
func padFor(size int) (pad, got int, err error) {
	measure := func(pad int) (int, error) {
		m, err := rawMsg(pad)
		if err != nil {
			return 0, err
		}
		var b bytes.Buffer
		_, err = m.WriteTo(&b)
		return b.Len(), err
	}
	base, err := measure(0)
	if err != nil {
		return 0, 0, err
	}
	pad = max(0, (size-base)/2)
	got, err = measure(pad)
	return pad, got, err
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawRedisResult is the raw EVALSHA baseline.
type rawRedisResult struct {
	Calls       int64   `json:"calls"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"calls_per_second"`
}

// rawEvalsha calls a script that does nothing (return 1) from conc
// clients at once for d, on the run's Redis.
func (e *env) rawEvalsha(ctx context.Context, conc int, d time.Duration) (rawRedisResult, error) {
	res := rawRedisResult{Concurrency: conc}
	sha, err := e.rdb.ScriptLoad(ctx, "return 1").Result()
	if err != nil {
		return res, err
	}
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	t0 := time.Now()
	deadline := t0.Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := e.rdb.EvalSha(ctx, sha, nil).Err(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	res.Calls, res.Seconds = n.Load(), elapsed.Seconds()
	res.PerSecond = float64(res.Calls) / elapsed.Seconds()
	return res, firstErr
}
