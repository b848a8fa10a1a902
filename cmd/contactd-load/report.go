package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// report is what a run prints: as text, or as JSON with -json.
type report struct {
	Date    string  `json:"date"`
	Command string  `json:"command"`
	Machine machine `json:"machine"`
	Setup   struct {
		Daemons     int     `json:"daemons"`
		Components  string  `json:"components"`
		Concurrency int     `json:"concurrency"`
		Duration    string  `json:"duration,omitempty"`
		Count       int     `json:"count,omitempty"`
		Services    int     `json:"services"`
		Sweep       string  `json:"sweep"`
		ChaosKillS  float64 `json:"chaos_kill_seconds,omitempty"`
	} `json:"setup"`
	Lifecycles struct {
		Count              int     `json:"count"`
		Failed             int     `json:"failed"`
		Seconds            float64 `json:"seconds"`
		PerSecond          float64 `json:"per_second"`
		P50Ms              float64 `json:"p50_ms"`
		P99Ms              float64 `json:"p99_ms"`
		MaxMs              float64 `json:"max_ms"`
		Emails             int64   `json:"emails"`
		EmailsPerLifecycle float64 `json:"emails_per_lifecycle"`
		AvgEmailBytes      int     `json:"avg_email_bytes"`
		SMTPConns          int     `json:"smtp_connections"`
	} `json:"lifecycles"`
	RawSMTP struct {
		// Runs are the runs before and after the measured phase.
		Runs []rawSMTPResult `json:"runs"`
		// PerSecond and CPUMicrosPerMsg are over all runs.
		PerSecond       float64 `json:"msgs_per_second"`
		CPUMicrosPerMsg float64 `json:"cpu_us_per_msg"`
	} `json:"raw_gomail"`
	Bound struct {
		PerSecond float64 `json:"lifecycles_per_second"`
		Ratio     float64 `json:"ratio"`
	} `json:"bound"`
	RawRedis rawRedisResult `json:"raw_evalsha"`
	Redis    struct {
		CommandsPerLifecycle    float64        `json:"commands_per_lifecycle"`
		ScriptCallsPerLifecycle float64        `json:"script_calls_per_lifecycle"`
		CPUMicrosPerLifecycle   float64        `json:"cpu_us_per_lifecycle"`
		ByCommand               []commandCount `json:"by_command"`
	} `json:"redis"`
	DaemonCPU struct {
		Seconds           float64 `json:"seconds"`
		MicrosPerEmail    float64 `json:"cpu_us_per_email"`
		RawMicrosPerEmail float64 `json:"raw_cpu_us_per_email"`
		Ratio             float64 `json:"ratio"`
		// ToolMicrosPerEmail is this program's own CPU (the clients,
		// the sink) per email, to show what it takes of the machine.
		ToolMicrosPerEmail float64 `json:"tool_cpu_us_per_email"`
	} `json:"daemon_cpu"`
	Pending struct {
		Requests        int     `json:"requests"`
		BytesPerRequest float64 `json:"bytes_per_request"`
		KeysPerRequest  float64 `json:"keys_per_request"`
	} `json:"pending"`
	Chaos struct {
		Kills      int `json:"kills"`
		Duplicates int `json:"duplicate_emails"`
	} `json:"chaos"`
	Profile struct {
		File    string   `json:"file,omitempty"`
		Binary  string   `json:"binary,omitempty"`
		Seconds int      `json:"seconds,omitempty"`
		Top     []string `json:"top,omitempty"`
		TopCum  []string `json:"top_cum,omitempty"`
	} `json:"profile"`
	// KeptDir is the run's directory, when kept.
	KeptDir  string    `json:"kept_dir,omitempty"`
	Checked  int       `json:"checked_requests"`
	Failures []failure `json:"failures"`
}

// commandCount is one Redis command's calls per lifecycle.
type commandCount struct {
	Command      string  `json:"command"`
	PerLifecycle float64 `json:"per_lifecycle"`
}

// machine describes where the run ran.
type machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	MemoryMiB  int    `json:"memory_mib"`
	Go         string `json:"go"`
	Redis      string `json:"redis"`
	LoadBefore string `json:"load_average_before"`
	LoadAfter  string `json:"load_average_after"`
}

func newReport(opt options) *report {
	// The program's own name: `go run` runs it from a temporary path.
	args := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	r := &report{Date: time.Now().UTC().Format(time.RFC3339), Command: strings.Join(args, " ")}
	r.Machine = machine{CPUs: runtime.NumCPU(), CPUModel: procField("/proc/cpuinfo", "model name"),
		Go: runtime.Version(), LoadBefore: loadAverage()}
	var kib int
	if _, err := fmt.Sscanf(procField("/proc/meminfo", "MemTotal"), "%d kB", &kib); err == nil {
		r.Machine.MemoryMiB = kib / 1024
	}
	s := &r.Setup
	s.Daemons, s.Components, s.Concurrency, s.Services, s.Sweep = opt.Daemons, opt.Components, opt.Concurrency, opt.Services, opt.Sweep
	if opt.Count > 0 {
		s.Count = opt.Count
	} else {
		s.Duration = opt.Duration.String()
	}
	s.ChaosKillS = opt.ChaosKill.Seconds()
	r.Failures = []failure{}
	return r
}

// procField is the value of the first "name : value" line of a /proc
// file, or "".
func procField(file, name string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage is the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func (r *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints the figures for a reader, one per line.
func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	m, s, l := r.Machine, r.Setup, r.Lifecycles
	p("date            %s", r.Date)
	p("machine         %d CPUs (%s), %d MiB, load average %s before, %s after; %s, redis-server %s (appendonly, everysec)",
		m.CPUs, m.CPUModel, m.MemoryMiB, m.LoadBefore, m.LoadAfter, m.Go, m.Redis)
	run := s.Duration
	if s.Count > 0 {
		run = fmt.Sprintf("%d lifecycles", s.Count)
	}
	p("setup           %d daemon(s) --components %s, %d lifecycles at once, %s, %d services, sweep %q",
		s.Daemons, s.Components, s.Concurrency, run, s.Services, s.Sweep)
	p("lifecycles      %d in %.1fs = %.1f/s (%d failed); create to last email p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		l.Count, l.Seconds, l.PerSecond, l.Failed, l.P50Ms, l.P99Ms, l.MaxMs)
	p("emails          %d (%.2f per lifecycle, %d bytes on average) on %d SMTP connection(s) at most at once",
		l.Emails, l.EmailsPerLifecycle, l.AvgEmailBytes, l.SMTPConns)
	for i, raw := range r.RawSMTP.Runs {
		when := "after"
		if i == 0 && len(r.RawSMTP.Runs) > 1 {
			when = "before"
		}
		p("raw go-mail     %d msgs of %d bytes on %d connection(s) in %.2fs = %.0f msgs/s (%s the lifecycles)",
			raw.Msgs, raw.Bytes, raw.Conns, raw.Seconds, raw.PerSecond, when)
	}
	p("bound           %.0f msgs/s (all raw runs) / %d emails = %.1f lifecycles/s; ratio %.3f",
		r.RawSMTP.PerSecond, emailsPerLifecycle, r.Bound.PerSecond, r.Bound.Ratio)
	p("raw EVALSHA     %.0f calls/s at %d at once", r.RawRedis.PerSecond, r.RawRedis.Concurrency)
	p("redis           %.1f commands per lifecycle (%.1f script calls), %.0f µs of redis-server CPU per lifecycle",
		r.Redis.CommandsPerLifecycle, r.Redis.ScriptCallsPerLifecycle, r.Redis.CPUMicrosPerLifecycle)
	p("daemon CPU      %.0f µs per email (%.1fs in all) vs raw go-mail %.0f µs per email: %.2f×; this tool (clients, sink) %.0f µs per email",
		r.DaemonCPU.MicrosPerEmail, r.DaemonCPU.Seconds, r.DaemonCPU.RawMicrosPerEmail, r.DaemonCPU.Ratio, r.DaemonCPU.ToolMicrosPerEmail)
	if r.Pending.Requests > 0 {
		p("pending         %.0f bytes of used_memory and %.2f keys per pending request (%d requests, two approvers, validation emails sent)",
			r.Pending.BytesPerRequest, r.Pending.KeysPerRequest, r.Pending.Requests)
	}
	if s.ChaosKillS > 0 {
		p("chaos           %d kill(s), one every %gs; %d duplicate emails", r.Chaos.Kills, s.ChaosKillS, r.Chaos.Duplicates)
	}
	if r.Profile.File != "" {
		p("\ndaemon CPU profile (%ds): %s", r.Profile.Seconds, r.Profile.File)
		for _, line := range r.Profile.Top {
			p("  %s", line)
		}
		if len(r.Profile.TopCum) > 0 {
			p("\nby cumulated time:")
			for _, line := range r.Profile.TopCum {
				p("  %s", line)
			}
		}
		p("\nredis commands per lifecycle, by command (INFO commandstats):")
		for _, c := range r.Redis.ByCommand {
			p("  %-22s %7.2f", c.Command, c.PerLifecycle)
		}
	}
	if len(r.Failures) == 0 {
		p("checks          ok: %d requests; each lifecycle applied once (history, events stream, service), its emails as expected; every link worked until its approver decided",
			r.Checked)
	} else {
		p("checks          %d FAILURES:", len(r.Failures))
		for i, f := range r.Failures {
			if i == 50 {
				p("  ... and %d more", len(r.Failures)-50)
				break
			}
			p("  [%s] %s", f.Check, f.Detail)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
