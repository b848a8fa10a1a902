// Command contactd-load measures a real `contactd serve` under whole
// change-request lifecycles, beside raw baselines measured in the same
// run, and can kill the daemon again and again to check that nothing is
// lost or done twice. Run `go run ./cmd/contactd-load -h` for its flags;
// docs/performance.md ("Load tool") describes what it measures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(rawSMTPEnv) != "" {
		os.Exit(rawSMTPChild(os.Stdout, os.Stderr))
	}
	opt, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "contactd-load:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, opt, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "contactd-load:", err)
		os.Exit(1)
	}
	if opt.JSON {
		err = rep.writeJSON(os.Stdout)
	} else {
		err = rep.writeText(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "contactd-load:", err)
		os.Exit(1)
	}
	if len(rep.Failures) > 0 {
		os.Exit(1)
	}
}

// options are the command line's choices.
type options struct {
	Bin         string
	RedisServer string
	Daemons     int
	Components  string
	Concurrency int
	Duration    time.Duration
	Count       int
	Warmup      int
	Services    int
	Pending     int
	Timeout     time.Duration
	Sweep       string
	LogLevel    string

	RawMsgs  int
	RawConns int
	RawRedis time.Duration

	ChaosKill time.Duration

	Pprof        bool
	PprofSeconds int
	PprofOut     string

	JSON bool
	Keep bool
}

const about = `usage: go run ./cmd/contactd-load [flags]

Starts a redis-server with AOF (appendfsync everysec) on a free loopback
port, an SMTP sink in this process, and contactd serve as child processes
configured for them; imports a directory of services; then runs whole
lifecycles at the given concurrency: create a request through the API
(a new technical contact, two approvers), wait for both validation emails
at the sink, accept each through its page (GET /v/TOKEN, then POST
decision=accept), and wait for the five emails that follow (7 in all).

It prints lifecycles/s beside raw baselines measured in the same run (raw
go-mail messages/s to the same sink on as many connections as the daemons
used, raw EVALSHA calls/s on the same Redis), the ratio to the bound (raw
go-mail msgs/s / 7), Redis commands and CPU per lifecycle, Redis memory
per pending request, p50/p99 from create to the last email, and the
daemons' CPU per email against the raw sender's. At the end it checks
every request was applied exactly once (its history, the events stream,
the service's contacts) and received exactly its 7 emails (at least, when
killing). It exits 1 when a check failed, naming what failed.

Needs redis-server (the Debian package redis-server) and the Go toolchain
(to build contactd, unless -bin is given, and for the profile's summary).

flags:
`

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("contactd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, about)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Bin, "bin", "", "contactd binary to run (default: build ./cmd/contactd into the run's directory)")
	fs.StringVar(&o.RedisServer, "redis-server", "", "redis-server binary (default: the one in PATH)")
	fs.IntVar(&o.Daemons, "daemons", 1, "number of contactd serve processes sharing the Redis")
	fs.StringVar(&o.Components, "components", "http,mailer,scheduler", "--components of each daemon (the inbox needs a mailbox the tool does not provide)")
	fs.IntVar(&o.Concurrency, "c", 16, "lifecycles run at once (also the raw EVALSHA baseline's concurrency)")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "start lifecycles for this long (ignored with -n)")
	fs.IntVar(&o.Count, "n", 0, "run exactly this many lifecycles instead of for -duration")
	fs.IntVar(&o.Warmup, "warmup", 20, "lifecycles run first and left out of the figures")
	fs.IntVar(&o.Services, "services", 2000, "services the lifecycles take turns on (each flips its technical contact); at least -c")
	fs.IntVar(&o.Pending, "pending", 1000, "requests left pending at the end to measure Redis memory per pending request (0: skip)")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "longest a lifecycle may take before it counts as failed")
	fs.StringVar(&o.Sweep, "sweep", "@every 30s", "the daemons' schedule.sweep (the sweep applies requests a crash left approved)")
	fs.StringVar(&o.LogLevel, "log-level", "info", "the daemons' log.level")
	fs.IntVar(&o.RawMsgs, "raw-msgs", 20000, "messages each run of the raw go-mail baseline sends (one run after the warm-up, one after the lifecycles)")
	fs.IntVar(&o.RawConns, "raw-conns", 0, "connections of the raw go-mail baseline (default: the most the daemons held open at once)")
	fs.DurationVar(&o.RawRedis, "raw-redis", 3*time.Second, "how long the raw EVALSHA baseline runs")
	fs.Var((*seconds)(&o.ChaosKill), "chaos-kill", "kill -9 a daemon every `N` seconds (restarting it at once) while lifecycles run; 0: never")
	fs.BoolVar(&o.Pprof, "pprof", false, "profile the first daemon's CPU under load (serve --pprof), print the profile's top lines and the Redis commands per lifecycle by command")
	fs.IntVar(&o.PprofSeconds, "pprof-seconds", 0, "length of the CPU profile (default: -duration, or 10 with -n)")
	fs.StringVar(&o.PprofOut, "pprof-out", "", "file to save the CPU profile in (default: contactd-load-cpu-TIME.pprof in the system's temporary directory)")
	fs.BoolVar(&o.JSON, "json", false, "print the figures as JSON")
	fs.BoolVar(&o.Keep, "keep", false, "keep the run's directory (configs, logs, AOF) instead of deleting it; it is always kept when a check fails")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	return o, o.validate()
}

func (o *options) validate() error {
	var errs []string
	if o.Daemons < 1 {
		errs = append(errs, "-daemons must be at least 1")
	}
	if o.Concurrency < 1 {
		errs = append(errs, "-c must be at least 1")
	}
	if o.Count < 0 {
		errs = append(errs, "-n must not be negative")
	}
	if o.Count == 0 && o.Duration <= 0 {
		errs = append(errs, "-duration must be positive (or give -n)")
	}
	if o.Warmup < 0 || o.Pending < 0 || o.RawMsgs < 1 || o.RawConns < 0 {
		errs = append(errs, "-warmup, -pending and -raw-conns must not be negative, -raw-msgs must be positive")
	}
	if o.Services < o.Concurrency {
		errs = append(errs, fmt.Sprintf("-services (%d) must be at least -c (%d)", o.Services, o.Concurrency))
	}
	if o.ChaosKill < 0 {
		errs = append(errs, "-chaos-kill must not be negative")
	}
	if o.Pprof && o.ChaosKill > 0 {
		errs = append(errs, "-pprof and -chaos-kill do not go together: a killed daemon leaves no profile")
	}
	if !strings.Contains(","+o.Components+",", ",http,") || !strings.Contains(","+o.Components+",", ",mailer,") {
		errs = append(errs, "-components must include http and mailer (the lifecycles need the API, the pages and the emails)")
	}
	if o.Timeout <= 0 || o.RawRedis <= 0 {
		errs = append(errs, "-timeout and -raw-redis must be positive")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// seconds is a duration flag that also takes a plain number of seconds.
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		*s = seconds(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a number of seconds or a duration such as 1.5s")
	}
	*s = seconds(d)
	return nil
}
