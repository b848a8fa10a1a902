package main

import (
	"context"
	"io"
	"strings"

	"contactd/workflow"
)

// listFlag is a flag given any number of times, each value kept.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// cmdHandover runs `contactd handover create|show|cancel|resend`.
func cmdHandover(ctx context.Context, name string, args []string, stdout io.Writer) error {
	f := newFlags("handover " + name)
	var want int
	var requester, admin, tech, billing, nic *string
	var services listFlag
	switch name {
	case "create":
		want = 0
		requester = f.String("requester", "", "`NIC` of the contact asking")
		admin = f.String("admin", "", "`NIC` of the new admin contact")
		tech = f.String("tech", "", "`NIC` of the new tech contact")
		billing = f.String("billing", "", "`NIC` of the new billing contact")
		f.Var(&services, "service", "`ID` of a service to hand over, once per service (default: every service the requester may change so)")
	case "show":
		want = 1
	case "resend":
		want = 1
		nic = f.String("nic", "", "`NIC` of the only approver to email")
	case "cancel":
		want = 1
		nic = f.String("nic", "", "`NIC` of the requester")
	default:
		return usageError{"unknown command: handover " + name}
	}
	pos, err := f.parse(args, want)
	if err != nil {
		return err
	}
	switch {
	case name == "create" && *requester == "":
		return usageError{"handover create needs --requester"}
	case name == "create" && *admin == "" && *tech == "" && *billing == "":
		return usageError{"handover create needs at least one of --admin, --tech, --billing"}
	case name == "cancel" && *nic == "":
		return usageError{"handover cancel needs --nic"}
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
		h, err := s.CreateHandover(ctx, workflow.HandoverAsk{Requester: *requester, Changes: changes, Services: services}, workflow.CLI, "")
		return printOr(stdout, h, err)
	case "show":
		h, err := s.GetHandover(ctx, pos[0])
		return printOr(stdout, h, err)
	case "resend":
		n, err := s.ResendHandover(ctx, pos[0], *nic)
		return printOr(stdout, map[string]any{"id": pos[0], "queued": n}, err)
	default:
		h, err := s.CancelHandover(ctx, pos[0], *nic, workflow.CLI)
		return printOr(stdout, h, err)
	}
}
