package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"contactd/workflow"
)

func cmdImport(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("directory import")
	pos, err := f.parse(args, 1)
	if err != nil {
		return err
	}
	file, err := os.Open(pos[0])
	if err != nil {
		return workflow.Errorf(workflow.EInvalidRequest, "%v", err)
	}
	defer file.Close()
	b, err := openStore(ctx, *f.config)
	if err != nil {
		return err
	}
	defer b.Close()
	n, err := b.store.ImportReader(ctx, file)
	if err != nil {
		var e *workflow.Error
		if asErr(err, &e) {
			return &workflow.Error{Code: e.Code, Message: pos[0] + ": " + e.Message}
		}
		return err
	}
	return printJSON(stdout, n)
}

// cmdReindex rebuilds the directory's indexes and removes those of the
// previous layout.
func cmdReindex(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("directory reindex")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	b, err := openStore(ctx, *f.config)
	if err != nil {
		return err
	}
	defer b.Close()
	res, err := b.store.ReindexDirectory(ctx)
	if err != nil {
		return err
	}
	return printJSON(stdout, res)
}

// cmdUpgrade converts what the previous version left in Redis: its
// requests, their tokens and its outbox, then the directory's indexes.
func cmdUpgrade(ctx context.Context, args []string, stdout io.Writer) error {
	f := newFlags("upgrade")
	if _, err := f.parse(args, 0); err != nil {
		return err
	}
	b, err := openStore(ctx, *f.config)
	if err != nil {
		return err
	}
	defer b.Close()
	req, err := b.store.MigrateRequests(ctx)
	if err != nil {
		return err
	}
	dir, err := b.store.ReindexDirectory(ctx)
	if err != nil {
		return err
	}
	return printJSON(stdout, map[string]any{"requests": req, "directory": dir})
}

func cmdRequest(ctx context.Context, name string, args []string, stdout io.Writer) error {
	f := newFlags("request " + name)
	var want int
	var service, requester, admin, tech, billing, nic, status *string
	switch name {
	case "create":
		service = f.String("service", "", "`ID` of the service")
		requester = f.String("requester", "", "`NIC` of the contact asking")
		admin = f.String("admin", "", "`NIC` of the new admin contact")
		tech = f.String("tech", "", "`NIC` of the new tech contact")
		billing = f.String("billing", "", "`NIC` of the new billing contact")
	case "show":
		want = 1
	case "list":
		nic = f.String("nic", "", "`NIC` whose requests to list")
		status = f.String("status", "", "only requests in this `STATUS`")
	case "resend":
		want = 1
		nic = f.String("nic", "", "`NIC` of the only approver to email")
	case "cancel":
		want = 1
		nic = f.String("nic", "", "`NIC` of the requester")
	default:
		return usageError{"unknown command: request " + name}
	}
	pos, err := f.parse(args, want)
	if err != nil {
		return err
	}
	switch {
	case name == "create" && (*service == "" || *requester == ""):
		return usageError{"request create needs --service and --requester"}
	case name == "create" && *admin == "" && *tech == "" && *billing == "":
		return usageError{"request create needs at least one of --admin, --tech, --billing"}
	case (name == "list" || name == "cancel") && *nic == "":
		return usageError{"request " + name + " needs --nic"}
	}
	b, err := openStore(ctx, *f.config)
	if err != nil {
		return err
	}
	defer b.Close()
	s := b.store
	switch name {
	case "create":
		changes := map[string]string{}
		for role, v := range map[string]string{"admin": *admin, "tech": *tech, "billing": *billing} {
			if v != "" {
				changes[role] = v
			}
		}
		r, err := s.Create(ctx, workflow.Ask{Service: *service, Requester: *requester, Changes: changes}, workflow.CLI)
		return printOr(stdout, r, err)
	case "show":
		r, err := s.Get(ctx, pos[0])
		return printOr(stdout, r, err)
	case "list":
		l, err := s.List(ctx, *nic, *status)
		return printOr(stdout, l, err)
	case "resend":
		n, err := s.Resend(ctx, pos[0], *nic)
		return printOr(stdout, map[string]any{"id": pos[0], "queued": n}, err)
	default:
		r, err := s.Cancel(ctx, pos[0], *nic, workflow.CLI)
		return printOr(stdout, r, err)
	}
}

// printOr prints v as JSON, or returns err.
func printOr(w io.Writer, v any, err error) error {
	if err != nil {
		var e *workflow.Error
		if asErr(err, &e) && e.RequestID != "" && e.Code == workflow.EConflict {
			return &workflow.Error{Code: e.Code, Message: fmt.Sprintf("%s (request_id %s)", e.Message, e.RequestID)}
		}
		return err
	}
	return printJSON(w, v)
}

func asErr(err error, target **workflow.Error) bool { return errors.As(err, target) }
