// Command contactd runs the change-of-contact workflow: the daemon, its
// demo, and the commands that manage the directory and the requests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"contactd/config"
	"contactd/workflow"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

// usageError is a bad invocation: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status: 0, 1 for a
// refusal or failure (printed as "error: CODE: MESSAGE"), 2 for a bad
// invocation.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	routeRedisLog(newLogger(stderr, "warn", "text"), nil)
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	var help helpText
	switch {
	case err == nil:
		return 0
	case errors.As(err, &help):
		fmt.Fprint(stdout, string(help))
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "contactd: %s\n\n%s", ue.msg, usage(groupOf(args)))
		return 2
	}
	code := workflow.ErrorCode(err)
	msg := workflow.ErrorMessage(err)
	var probs config.Problems
	switch {
	case errors.As(err, &probs):
		code, msg = "config", strings.Join(probs, "\n  ")
	case code == workflow.EInternal:
		msg = err.Error()
	}
	fmt.Fprintf(stderr, "error: %s: %s\n", code, msg)
	return 1
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"a command is needed"}
	}
	cmd, rest := args[0], args[1:]
	sub := func() (string, []string, error) {
		if len(rest) == 0 {
			return "", nil, usageError{cmd + " needs a subcommand"}
		}
		if isHelp(rest[0]) {
			return "", nil, groupHelp(cmd)
		}
		return rest[0], rest[1:], nil
	}
	switch cmd {
	case "-h", "--help", "help":
		if len(rest) > 0 {
			return dispatch(ctx, append(rest, "--help"), stdout, stderr)
		}
		return helpText(usage(""))
	case "version", "--version":
		return cmdVersion(rest, stdout)
	case "serve":
		return cmdServe(ctx, rest, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "config":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		if name != "check" {
			return usageError{"unknown command: config " + name}
		}
		return cmdConfigCheck(ctx, rest, stdout, stderr)
	case "templates":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		return cmdTemplates(name, rest, stdout)
	case "directory":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		switch name {
		case "import":
			return cmdImport(ctx, rest, stdout)
		case "reindex":
			return cmdReindex(ctx, rest, stdout)
		}
		return usageError{"unknown command: directory " + name}
	case "upgrade":
		return cmdUpgrade(ctx, rest, stdout)
	case "request":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		return cmdRequest(ctx, name, rest, stdout)
	case "handover":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		return cmdHandover(ctx, name, rest, stdout)
	case "outbox":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		return cmdOutbox(ctx, name, rest, stdout)
	}
	return usageError{"unknown command: " + cmd}
}

// groupOf is the command, or group of commands, args name; "" when they
// name none.
func groupOf(args []string) string {
	if len(args) > 0 && isGroup(args[0]) {
		return args[0]
	}
	return ""
}

// isHelp tells an argument asking for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// flags is a flag set that also takes flags after positional arguments.
type flags struct {
	*flag.FlagSet
	config *string
}

// newFlags returns the flags of the command name, --config among them.
func newFlags(name string) *flags {
	f := newPlainFlags(name)
	def := os.Getenv("CONTACTD_CONFIG")
	if def == "" {
		def = "config.yaml"
	}
	f.config = f.String("config", def, "configuration `FILE`")
	return f
}

// newPlainFlags returns the flags of a command that reads no configuration.
func newPlainFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{FlagSet: fs}
}

// parse reads flags wherever they stand and returns the positional
// arguments; want is how many there must be.
func (f *flags) parse(args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, commandHelp(f.Name(), f.FlagSet)
			}
			return nil, usageError{f.Name() + ": " + err.Error()}
		}
		if f.NArg() == 0 {
			break
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
	if want >= 0 && len(pos) != want {
		return nil, usageError{fmt.Sprintf("%s takes %d argument(s), got %d", f.Name(), want, len(pos))}
	}
	return pos, nil
}

// loadConfig reads the configuration at path. A file that is not there
// is told with what to do: name one, or make one from the example.
func loadConfig(path string) (config.Config, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return config.Config{}, config.Problems{fmt.Sprintf("%s: no such file. Name the configuration with --config FILE "+
			"or $CONTACTD_CONFIG (the package installs /etc/contactd/config.yaml), or make one from config.example.yaml, "+
			"which lists every key with its default: cp config.example.yaml %s", path, path)}
	}
	return config.Load(path)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdConfigCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("config check")
	probe := f.Bool("probe", false, "also log in to Redis, SMTP and IMAP and say what answered")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(*f.config)
	if err != nil {
		return err
	}
	warnings := cfg.Warnings()
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	out := map[string]any{"config": *f.config, "valid": true, "warnings": len(warnings)}
	if !*probe {
		return printJSON(stdout, out)
	}
	lines, perr := probeAll(ctx, cfg)
	out["probes"] = lines
	if err := printJSON(stdout, out); err != nil {
		return err
	}
	return perr
}
