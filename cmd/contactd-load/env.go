package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"contactd/internal/daemonproc"
	"contactd/internal/redisserver"
	"contactd/internal/smtpsink"
)

// keyPrefix is the daemons' redis.key_prefix.
const keyPrefix = "contactd"

// env is everything a run starts: Redis, the sink, the daemons, and the
// directory they serve.
type env struct {
	opt      options
	progress io.Writer
	dir      string
	bin      string
	redis    *redisserver.Server
	rdb      *redis.Client
	sink     *smtpsink.Sink
	track    *tracker
	daemons  []*daemon
	apiToken string
	client   *http.Client
	// services are the ones lifecycles take turns on; pendings those
	// left pending at the end.
	services, pendings []*service
	pool               chan *service
	// turn spreads API calls over the daemons; failed counts the
	// lifecycles that failed.
	turn, failed atomic.Int64

	mu       sync.Mutex
	failures []failure
}

// setup starts everything, in order, and undoes what it did on failure.
func setup(ctx context.Context, opt options, progress io.Writer) (_ *env, err error) {
	e := &env{opt: opt, progress: progress, track: newTracker()}
	if e.dir, err = os.MkdirTemp("", "contactd-load-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.close(false)
		}
	}()
	e.say("run directory %s", e.dir)
	if e.bin = opt.Bin; e.bin == "" {
		if e.bin, err = buildContactd(ctx, e.dir); err != nil {
			return nil, err
		}
		e.say("built contactd")
	}
	if e.redis, err = redisserver.Start(ctx, redisserver.Options{Dir: e.dir, AOF: true, Binary: opt.RedisServer}); err != nil {
		return nil, err
	}
	e.rdb = redis.NewClient(&redis.Options{Addr: e.redis.Addr, PoolSize: opt.Concurrency + 4})
	e.say("redis-server on %s (appendonly yes, appendfsync everysec)", e.redis.Addr)
	if e.sink, err = smtpsink.Start(e.track.handle); err != nil {
		return nil, err
	}
	e.apiToken = randomHex(16)
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 2*opt.Concurrency + 8, IdleConnTimeout: time.Minute}}
	if err := e.writeConfigs(); err != nil {
		return nil, err
	}
	if err := e.importDirectory(ctx); err != nil {
		return nil, err
	}
	for _, d := range e.daemons {
		if err := d.start(); err != nil {
			return nil, err
		}
	}
	e.say("%d contactd serve running (--components %s), SMTP sink on %s", len(e.daemons), opt.Components, e.sink.Addr)
	return e, nil
}

// close stops everything it started, daemons first; keep leaves the run
// directory in place.
func (e *env) close(keep bool) {
	for _, d := range e.daemons {
		d.stop()
	}
	if e.sink != nil {
		_ = e.sink.Close()
	}
	if e.rdb != nil {
		_ = e.rdb.Close()
	}
	if e.redis != nil {
		e.redis.Stop()
	}
	if keep {
		e.say("kept %s (configs, daemon logs, redis.log, AOF)", e.dir)
		return
	}
	_ = os.RemoveAll(e.dir)
}

func (e *env) say(format string, args ...any) {
	fmt.Fprintf(e.progress, "contactd-load: "+format+"\n", args...)
}

// buildContactd builds the daemon of this module into dir.
func buildContactd(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "contactd")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "contactd/cmd/contactd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building contactd (run from inside the module, or give -bin): %v\n%s", err, out)
	}
	return bin, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freeAddr asks the system for a free loopback address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// writeConfigs writes one configuration per daemon: the same Redis,
// sink and API token, an HTTP address of its own (the base URL of the
// links it sends).
func (e *env) writeConfigs() error {
	for i := range e.opt.Daemons {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		conf := filepath.Join(e.dir, fmt.Sprintf("config-%d.yaml", i))
		yaml := fmt.Sprintf(`redis: {addr: %q, key_prefix: %s}
smtp: {host: 127.0.0.1, port: %d, tls: none, from: "Contacts <contacts@example.com>"}
imap: {host: 127.0.0.1, port: 1, tls: none, username: load, password: load}
http: {listen: %q, base_url: "http://%s", api_tokens: [%q]}
schedule: {sweep: %q}
log: {format: json, level: %s}
`, e.redis.Addr, keyPrefix, e.sink.Port(), addr, addr, e.apiToken, e.opt.Sweep, e.opt.LogLevel)
		if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
			return err
		}
		args := []string{"serve", "--config", conf, "--components", e.opt.Components}
		d := &daemon{base: "http://" + addr, conf: conf}
		if i == 0 && e.opt.Pprof {
			if d.pprof, err = freeAddr(); err != nil {
				return err
			}
			args = append(args, "--pprof", d.pprof)
		}
		d.opt = daemonproc.Options{Bin: e.bin, Args: args, Log: filepath.Join(e.dir, fmt.Sprintf("daemon-%d.log", i)),
			Health: d.base + "/healthz"}
		e.daemons = append(e.daemons, d)
	}
	return nil
}

// importDirectory writes the directory (the lifecycles' services and the
// pending ones) and loads it with `contactd directory import`.
func (e *env) importDirectory(ctx context.Context) error {
	for i := range e.opt.Services {
		e.services = append(e.services, newService("s", i))
	}
	for i := range e.opt.Pending {
		e.pendings = append(e.pendings, newService("p", i))
	}
	e.pool = make(chan *service, len(e.services))
	for _, s := range e.services {
		e.pool <- s
	}
	file := filepath.Join(e.dir, "directory.yaml")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	all := append(append([]*service(nil), e.services...), e.pendings...)
	if err := writeDirectory(f, all); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, e.bin, "directory", "import", "--config", e.daemons[0].conf, file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("contactd directory import: %v\n%s", err, out)
	}
	e.say("imported %d services and %d contacts", len(all), 3*len(all))
	return nil
}

// service is one service of the directory: its admin asks, each time,
// for its technical contact to become the other of two candidates.
type service struct {
	id, admin string
	techs     [2]string
	// cur is which of techs holds the role now; only the lifecycle that
	// holds the service touches it.
	cur int
	// broken is set when a lifecycle on it failed: it is left out of
	// the pool and of the final check of its contacts.
	broken bool
}

// newService is service number i of a series: <series>i.example, its
// admin <series>a<i>-ovh, its two technical candidates <series>t<i>-ovh
// (the first holder) and <series>n<i>-ovh.
func newService(series string, i int) *service {
	n := strconv.Itoa(i)
	return &service{id: series + n + ".example", admin: series + "a" + n + "-ovh",
		techs: [2]string{series + "t" + n + "-ovh", series + "n" + n + "-ovh"}}
}

func (s *service) tech() string  { return s.techs[s.cur] }
func (s *service) other() string { return s.techs[1-s.cur] }

// mailOf is the email address of a NIC handle in the generated directory.
func mailOf(nic string) string { return strings.TrimSuffix(nic, "-ovh") + "@example.com" }

func writeDirectory(w io.Writer, svcs []*service) error {
	var b strings.Builder
	b.WriteString("contacts:\n")
	for _, s := range svcs {
		for _, nic := range []string{s.admin, s.techs[0], s.techs[1]} {
			fmt.Fprintf(&b, "  - {nic: %s, email: %s}\n", nic, mailOf(nic))
		}
	}
	b.WriteString("services:\n")
	for _, s := range svcs {
		fmt.Fprintf(&b, "  - {id: %s, kind: domain, admin: %s, tech: %s, billing: %s}\n", s.id, s.admin, s.tech(), s.admin)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// daemon is one `contactd serve` slot: its process, restarted after each
// kill, and the CPU time of the processes it ran.
type daemon struct {
	opt   daemonproc.Options
	base  string
	conf  string
	pprof string

	mu    sync.Mutex
	proc  *daemonproc.Process
	spent time.Duration
	kills int
}

func (d *daemon) start() error {
	p, err := daemonproc.Start(d.opt)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.proc = p
	d.mu.Unlock()
	return nil
}

// kill ends the process with SIGKILL and starts a new one at once.
func (d *daemon) kill() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.spent += d.proc.Kill()
	d.kills++
	p, err := daemonproc.Start(d.opt)
	if err != nil {
		d.proc = nil
		return fmt.Errorf("restarting %s after a kill: %w", d.base, err)
	}
	d.proc = p
	return nil
}

// cpu is the CPU time of every process this slot ran, so far.
func (d *daemon) cpu() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.spent
	if d.proc != nil {
		c, _ := d.proc.CPU()
		t += c
	}
	return t
}

func (d *daemon) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil {
		d.spent += d.proc.Stop(20 * time.Second)
		d.proc = nil
	}
}

func (e *env) daemonCPU() time.Duration {
	var t time.Duration
	for _, d := range e.daemons {
		t += d.cpu()
	}
	return t
}
