package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// command is one command line of SPEC section 7, for the help texts.
type command struct {
	name     string // "request create"
	synopsis string // what follows the name in a usage line
	about    string
}

var commands = []command{
	{"serve", "--config FILE [--components http,mailer,inbox,scheduler] [--templates DIR] [--listen ADDR] [--pprof ADDR]",
		"Run the daemon until SIGTERM or SIGINT."},
	{"demo", "[--listen ADDR] [--exit]",
		"Run the whole daemon on embedded backends, walk through a change, then serve its pages."},
	{"config check", "--config FILE",
		"Validate a configuration as serve would; print warnings on stderr."},
	{"templates render", "KIND LANG [--handover] [--templates DIR] [--config FILE] [--raw]",
		"Print an email of a kind, in one of the eight languages, about a made-up request (or hand-over), as the mailer would send it."},
	{"directory import", "--config FILE DATA.yaml", "Load contacts and services."},
	{"upgrade", "--config FILE",
		"Convert what the previous version left in Redis (requests, tokens, outbox, directory indexes); once, every daemon stopped."},
	{"directory reindex", "--config FILE", "Rebuild the directory's indexes from its contacts and services (once, after an upgrade)."},
	{"request create", "--config FILE --service S --requester N [--admin N] [--tech N] [--billing N]",
		"Create a change request; print it as JSON."},
	{"request show", "--config FILE ID", "Print a request as JSON."},
	{"request list", "--config FILE --nic N [--status S]", `Print the "My requests" list of a contact as JSON.`},
	{"request resend", "--config FILE ID [--nic N]", "Email the waiting approvers (or only N) again."},
	{"request cancel", "--config FILE ID --nic N", "Cancel a request; N must be its requester."},
	{"handover create", "--config FILE --requester N [--admin N] [--tech N] [--billing N] [--service S]...",
		"Hand roles over on many services at once (every service the requester may change so, or those named); print the hand-over as JSON."},
	{"handover show", "--config FILE ID", "Print a hand-over, with the status of each of its requests, as JSON."},
	{"handover cancel", "--config FILE ID --nic N", "Cancel a pending hand-over; N must be its requester."},
	{"handover resend", "--config FILE ID [--nic N]", "Email the hand-over's waiting approvers (or only N) again."},
	{"outbox list", "--config FILE [--dead] [--limit N]", "List the emails waiting (ready or being sent), or with --dead those given up, with their last error."},
	{"outbox retry", "--config FILE ID | --all-dead", "Send a dead email (or every one) again, its attempts counted from zero."},
	{"outbox drop", "--config FILE ID", "Forget a waiting or dead email."},
	{"version", "", "Print the version, the Go version and the source revision."},
}

const configNote = "--config defaults to $CONTACTD_CONFIG, else ./config.yaml.\n"

// helpText is printed on stdout, with exit status 0, for a help request.
type helpText string

func (h helpText) Error() string { return string(h) }

// usage lists the commands whose name starts with prefix ("" for all).
func usage(prefix string) string {
	var b strings.Builder
	if prefix == "" {
		b.WriteString("usage: contactd COMMAND [flags]\n\n")
	} else {
		fmt.Fprintf(&b, "usage: contactd %s ... [flags]\n\n", prefix)
	}
	for _, c := range commands {
		if prefix == "" || strings.HasPrefix(c.name+" ", prefix+" ") {
			fmt.Fprintln(&b, "  "+strings.TrimSpace(c.name+" "+c.synopsis))
		}
	}
	b.WriteString("\n" + configNote + "Run contactd COMMAND --help for the flags of a command.\n")
	return b.String()
}

// groupHelp is the help of a command that needs a subcommand (request,
// config, directory), or a usage error when there is no such group.
func groupHelp(group string) error {
	if !isGroup(group) {
		return usageError{"unknown command: " + group}
	}
	return helpText(usage(group))
}

// isGroup tells the name of a command or the first word of several.
func isGroup(name string) bool {
	for _, c := range commands {
		if c.name == name || strings.HasPrefix(c.name, name+" ") {
			return true
		}
	}
	return false
}

// commandHelp is the help of one command: its usage line, what it does,
// and every flag of fs.
func commandHelp(name string, fs *flag.FlagSet) helpText {
	var b strings.Builder
	for _, c := range commands {
		if c.name == name {
			fmt.Fprintf(&b, "usage: %s\n\n%s\n", strings.TrimSpace("contactd "+c.name+" "+c.synopsis), c.about)
		}
	}
	b.WriteString("\nflags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if arg != "" {
			left += " " + arg
		}
		if f.DefValue != "" && f.DefValue != "false" {
			text += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(&b, "  %-22s %s\n", left, text)
	})
	if fs.Lookup("config") != nil {
		b.WriteString("\n" + configNote)
	}
	return helpText(b.String())
}

// buildInfo is what `contactd version` prints.
type buildInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"revision_time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

// readBuildInfo gathers the stamped version and what the Go toolchain
// recorded: its version and the VCS revision of the source.
func readBuildInfo() buildInfo {
	bi := buildInfo{Version: version, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.Time = s.Value
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	return bi
}

func cmdVersion(args []string, stdout io.Writer) error {
	f := newPlainFlags("version")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	return printJSON(stdout, readBuildInfo())
}
