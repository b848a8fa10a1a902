// Package daemonproc runs a server (such as `contactd serve`) as a child
// process, waits until it answers its health URL, kills or stops it, and
// reads the CPU time it has used.
package daemonproc

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options say what to run.
type Options struct {
	// Bin and Args are the command line.
	Bin  string
	Args []string
	// Log is the file that receives the process's output, appended to.
	Log string
	// Health is a URL that answers 200 once the process is ready.
	Health string
	// Ready bounds the wait for Health; 15 s when zero.
	Ready time.Duration
}

// Process is one running child.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs the command and returns once its health URL answers 200.
func Start(opt Options) (*Process, error) {
	logf, err := os.OpenFile(opt.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(opt.Bin, opt.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("daemonproc: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	ready := opt.Ready
	if ready == 0 {
		ready = 15 * time.Second
	}
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(ready); ; {
		if resp, err := client.Get(opt.Health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("daemonproc: %s exited at start (%s; see %s)", opt.Bin, cmd.ProcessState, opt.Log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("daemonproc: %s did not answer %s within %s (see %s)", opt.Bin, opt.Health, ready, opt.Log)
		}
	}
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// CPU is the CPU time (user and system) the process has used so far.
func (p *Process) CPU() (time.Duration, error) { return CPUTime(p.PID()) }

// Kill ends the process with SIGKILL and waits for it. It returns the
// CPU time the process used, read just before the signal.
func (p *Process) Kill() time.Duration {
	cpu, _ := p.CPU()
	_ = p.cmd.Process.Kill()
	<-p.done
	return cpu
}

// Stop ends the process with SIGTERM, and SIGKILL if it has not exited
// within grace. It returns the CPU time the process used.
func (p *Process) Stop(grace time.Duration) time.Duration {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	st := p.cmd.ProcessState
	return st.UserTime() + st.SystemTime()
}

// userHZ is the unit of the CPU times of /proc/PID/stat: the kernel
// always reports them in hundredths of a second to user space.
const userHZ = 100

// CPUTime reads the user and system CPU time of a process from
// /proc/PID/stat (Linux).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("daemonproc: CPU time of %d: %w", pid, err)
	}
	return parseStat(string(b))
}

// parseStat reads utime and stime (fields 14 and 15) of a stat line. The
// command name (field 2) is in parentheses and may hold spaces, so the
// fields are counted from the last ')'.
func parseStat(line string) (time.Duration, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0, errors.New("daemonproc: malformed /proc stat line")
	}
	f := strings.Fields(line[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("daemonproc: short /proc stat line")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("daemonproc: /proc stat field %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}
