package main

import (
	"context"
	"io"
	"time"

	"contactd/workflow"
)

// outboxItem is an outbox entry as `contactd outbox list` prints it.
type outboxItem struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// Kind is the kind of the entry's next email; Kinds all its emails.
	Kind      workflow.Kind   `json:"kind"`
	Kinds     []workflow.Kind `json:"kinds"`
	Request   string          `json:"request,omitempty"`
	Handover  string          `json:"handover,omitempty"`
	NIC       string          `json:"nic,omitempty"`
	To        string          `json:"to,omitempty"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error,omitempty"`
	QueuedAt  time.Time       `json:"queued_at"`
	// At is when it may be sent (ready), when its claim lapses (claimed)
	// or when it was given up (dead).
	At time.Time `json:"at"`
}

// cmdOutbox runs `contactd outbox list|retry|drop`: how an operator sees
// and acts on waiting and dead email. Each change is one script on one
// entry's shard; retry --all-dead walks every shard.
func cmdOutbox(ctx context.Context, name string, args []string, stdout io.Writer) error {
	f := newFlags("outbox " + name)
	var dead, allDead *bool
	var limit *int64
	want := 1
	switch name {
	case "list":
		dead = f.Bool("dead", false, "list the dead entries (given up) instead of those waiting")
		limit = f.Int64("limit", 100, "most entries listed per shard")
		want = 0
	case "retry":
		allDead = f.Bool("all-dead", false, "retry every dead entry")
	case "drop":
	default:
		return usageError{"unknown command: outbox " + name}
	}
	if allDead != nil {
		if pos, err := f.parse(args, -1); err != nil {
			return err
		} else if *allDead == (len(pos) == 1) || len(pos) > 1 {
			return usageError{"outbox retry takes one entry ID or --all-dead"}
		} else {
			args = pos
		}
	} else if pos, err := f.parse(args, want); err != nil {
		return err
	} else {
		args = pos
	}
	b, err := openStore(ctx, *f.config)
	if err != nil {
		return err
	}
	defer b.Close()
	s := b.store
	switch {
	case name == "list":
		return listOutbox(ctx, s, *dead, *limit, stdout)
	case name == "retry" && *allDead:
		return retryAllDead(ctx, s, stdout)
	case name == "retry":
		return printOr(stdout, map[string]string{"retried": args[0]}, s.RetryDead(ctx, args[0]))
	default:
		return printOr(stdout, map[string]string{"dropped": args[0]}, s.DropOutboxEntry(ctx, args[0]))
	}
}

func listOutbox(ctx context.Context, s *workflow.Store, dead bool, limit int64, stdout io.Writer) error {
	states := []workflow.OutboxState{workflow.OutboxReady, workflow.OutboxClaimed}
	if dead {
		states = []workflow.OutboxState{workflow.OutboxDead}
	}
	out := []outboxItem{}
	for _, st := range states {
		es, err := s.ListOutbox(ctx, st, limit)
		if err != nil {
			return err
		}
		for _, e := range es {
			out = append(out, outboxItem{ID: e.Ref(), State: string(st), Kind: e.Kind(), Kinds: e.Kinds, Request: e.Request,
				Handover: e.Handover, NIC: e.NIC,
				To: e.To, Attempts: e.Attempts, LastError: e.LastError, QueuedAt: time.UnixMilli(e.At).UTC(), At: e.Due})
		}
	}
	return printJSON(stdout, out)
}

// retryAllDead retries every dead entry; one that cannot be read is left
// dead and reported as skipped (drop it instead).
func retryAllDead(ctx context.Context, s *workflow.Store, stdout io.Writer) error {
	es, err := s.ListOutbox(ctx, workflow.OutboxDead, 1<<20)
	if err != nil {
		return err
	}
	retried, skipped := []string{}, []string{}
	for _, e := range es {
		err := s.RetryDead(ctx, e.Ref())
		switch workflow.ErrorCode(err) {
		case "":
			retried = append(retried, e.Ref())
		case workflow.ENotFound: // retried or dropped meanwhile
		case workflow.EInvalidRequest:
			skipped = append(skipped, e.Ref())
		default:
			return err
		}
	}
	return printJSON(stdout, map[string]any{"retried": retried, "skipped": skipped})
}
