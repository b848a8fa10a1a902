// Package redisserver runs a private redis-server process on a loopback
// port chosen at start, with its data in a directory of the caller's, and
// reads the figures its INFO command gives (commands run, memory, CPU).
package redisserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options say how to run the server.
type Options struct {
	// Dir holds the server's data files (AOF) and its log.
	Dir string
	// AOF turns on the append-only file, fsynced every second, as a
	// production server would run.
	AOF bool
	// Binary is the redis-server to run; empty looks it up in PATH.
	Binary string
}

// Server is a running redis-server.
type Server struct {
	// Addr is its loopback host:port.
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// ErrNotInstalled is returned by Start when no redis-server is found.
var ErrNotInstalled = errors.New("redis-server not found in PATH: install the Debian package redis-server (apt-get install redis-server)")

// Start runs redis-server on a free loopback port and returns once it
// answers PING. A port taken by someone else between the choice and the
// start is retried with another.
func Start(ctx context.Context, opt Options) (*Server, error) {
	bin := opt.Binary
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("redis-server"); err != nil {
			return nil, ErrNotInstalled
		}
	}
	var last error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, bin, opt, port)
		if err == nil {
			return s, nil
		}
		last = err
	}
	return nil, last
}

func start(ctx context.Context, bin string, opt Options, port int) (*Server, error) {
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", opt.Dir,
		"--save", "", "--daemonize", "no", "--logfile", filepath.Join(opt.Dir, "redis.log")}
	if opt.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redisserver: starting %s: %w", bin, err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redisserver: redis-server exited at start (see %s)", filepath.Join(opt.Dir, "redis.log"))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redisserver: redis-server did not answer PING within 10s: %w", err)
		}
	}
}

// freePort asks the system for a free loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop ends the server with SIGTERM, and SIGKILL if it has not exited
// within five seconds.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Info returns the fields of one INFO section as name → value.
func Info(ctx context.Context, rdb redis.UniversalClient, section string) (map[string]string, error) {
	text, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out, nil
}

// CommandStats reads INFO commandstats: the calls of each command since
// the server started, the commands scripts run included (Redis counts
// each of them as well as the script call). Subcommands are named as
// Redis names them ("script|load").
func CommandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	fields, err := Info(ctx, rdb, "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for k, v := range fields {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisserver: commandstats %s: %q", k, v)
		}
		out[name] = n
	}
	return out, nil
}

// UsedMemory reads used_memory from INFO memory, in bytes.
func UsedMemory(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	fields, err := Info(ctx, rdb, "memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(fields["used_memory"], 10, 64)
}

// Keys reads the number of keys of every database from INFO keyspace.
func Keys(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	fields, err := Info(ctx, rdb, "keyspace")
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range fields {
		// db0:keys=12,expires=3,avg_ttl=0
		keys, _, _ := strings.Cut(strings.TrimPrefix(v, "keys="), ",")
		k, err := strconv.ParseInt(keys, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("redisserver: INFO keyspace: %q", v)
		}
		n += k
	}
	return n, nil
}

// CPU reads the server's CPU time (user and system, main thread and
// others) from INFO cpu.
func CPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	fields, err := Info(ctx, rdb, "cpu")
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, k := range []string{"used_cpu_sys", "used_cpu_user"} {
		v, err := strconv.ParseFloat(fields[k], 64)
		if err != nil {
			return 0, fmt.Errorf("redisserver: INFO cpu %s: %q", k, fields[k])
		}
		sum += v
	}
	return time.Duration(sum * float64(time.Second)), nil
}

// Version reads redis_version from INFO server.
func Version(ctx context.Context, rdb redis.UniversalClient) (string, error) {
	fields, err := Info(ctx, rdb, "server")
	if err != nil {
		return "", err
	}
	return fields["redis_version"], nil
}
