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
	"os"
	"os/signal"
	"strings"
	"syscall"

	"contactd/config"
	"contactd/workflow"
)

const usage = `usage: contactd COMMAND [flags]

  serve --config FILE [--components http,mailer,inbox,scheduler]
  demo
  config check --config FILE
  templates render KIND LANG [--templates DIR] [--config FILE]
  directory import --config FILE DATA.yaml
  request create --config FILE --service S --requester N [--admin N] [--tech N] [--billing N]
  request show ID
  request list --nic N [--status S]
  request resend ID [--nic N]
  request cancel ID --nic N

--config defaults to $CONTACTD_CONFIG, else ./config.yaml.
`

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
	err := dispatch(ctx, args, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "contactd: %s\n\n%s", ue.msg, usage)
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
		return rest[0], rest[1:], nil
	}
	switch cmd {
	case "-h", "--help", "help":
		return flag.ErrHelp
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
		return cmdConfigCheck(rest, stdout)
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
		if name != "import" {
			return usageError{"unknown command: directory " + name}
		}
		return cmdImport(ctx, rest, stdout)
	case "request":
		name, rest, err := sub()
		if err != nil {
			return err
		}
		return cmdRequest(ctx, name, rest, stdout)
	}
	return usageError{"unknown command: " + cmd}
}

// flags is a flag set that also takes flags after positional arguments.
type flags struct {
	*flag.FlagSet
	config *string
}

func newFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := os.Getenv("CONTACTD_CONFIG")
	if def == "" {
		def = "config.yaml"
	}
	return &flags{FlagSet: fs, config: fs.String("config", def, "configuration file")}
}

// parse reads flags wherever they stand and returns the positional
// arguments; want is how many there must be.
func (f *flags) parse(args []string, want int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{f.Name() + ": " + err.Error()}
		}
		if f.NArg() == 0 {
			break
		}
		pos = append(pos, f.Arg(0))
		args = f.Args()[1:]
	}
	if len(pos) != want {
		return nil, usageError{fmt.Sprintf("%s takes %d argument(s), got %d", f.Name(), want, len(pos))}
	}
	return pos, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdConfigCheck(args []string, stdout io.Writer) error {
	f := newFlags("config check")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	if _, err := config.Load(*f.config); err != nil {
		return err
	}
	return printJSON(stdout, map[string]any{"config": *f.config, "valid": true})
}
