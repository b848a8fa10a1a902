package workflow

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The jobs of the outbox carry a decision taken on a hand-over to each of
// its requests, which live on the shards of their services: the
// hand-over's approval (each request applied on its own service), its
// decline, expiry or cancellation (each pending request ended so), or a
// "this wasn't me" report (recorded on each request the reporter was told
// of). A job is claimed and renewed like an email, and every step is
// idempotent: a job run again after its daemon stopped does each thing
// once. Its last step, on the hand-over's shard, checks the job's claim,
// keeps the outcomes, queues the emails that follow (one per person) and
// removes the job, in one script.

// errJobSettled tells the mailer that a job removed itself from the
// outbox: nothing is left to record.
var errJobSettled = errors.New("workflow: job done and settled")

// IsJobSettled reports whether err says a job settled itself.
func IsJobSettled(err error) bool { return errors.Is(err, errJobSettled) }

// RunJob carries out the claimed job entry e. It returns an error
// IsJobSettled recognises once done (the job left the outbox), one
// IsClaimLost recognises when another daemon holds the job now, or the
// failure that leaves it to be tried again.
func (s *Store) RunJob(ctx context.Context, e *OutboxEntry) error {
	if e.Handover == "" {
		return Errorf(EInvalidRequest, "job %s names no hand-over", e.Ref())
	}
	h, err := s.readHandover(ctx, e.Handover)
	if err != nil {
		return err
	}
	return s.runJob(ctx, h, e)
}

func (s *Store) runJob(ctx context.Context, h *Handover, e *OutboxEntry) error {
	items := h.Items
	if e.Op == "dispute" {
		items = h.ItemsOf(e.NIC)
	}
	outcomes, err := s.runBatches(ctx, h, e, items)
	if err != nil {
		return err
	}
	return s.jobDone(ctx, h, e, items, outcomes)
}

// handoverInline is the size up to which the call that approves, declines
// or cancels a hand-over also carries out the job it queued, so that its
// answer shows the requests applied or ended, as a single request's
// would. A larger hand-over is left to a mailer, which claims the job a
// moment later, so that no call waits on thousands of services.
const handoverInline = 1000

// carryLease is how long the call holds the job it carries out; should it
// die on the way, a mailer takes the job over after that.
const carryLease = 15 * time.Second

// carryOut carries out job (the outbox id of the job just queued for
// hand-over id, op as a KindJob's) when the hand-over is small enough: it
// claims the job as a mailer would and runs it. If a mailer claimed it
// first, it still runs the job's batches, which are idempotent, so that
// the answer shows the requests done; the mailer finds them so. A failure
// is left for the job to overcome.
func (s *Store) carryOut(ctx context.Context, id, job, op, nic string, ch Channel) {
	// A caller that goes away (a closed connection) does not cut the job
	// short: it is the caller's decision being carried out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), carryLease/2)
	defer cancel()
	h, err := s.readHandover(ctx, id)
	if err != nil || len(h.Items) > handoverInline {
		return
	}
	if job != "" {
		shard, _ := shardFromID(id)
		if e, err := s.claimEntry(ctx, shard, job, carryLease); err == nil && e != nil && e.Kind() == KindJob && e.Handover == id {
			_ = s.runJob(ctx, h, e)
			return
		}
	}
	_, _ = s.runBatches(ctx, h, &OutboxEntry{Message: Message{Handover: id, Op: op, NIC: nic, Channel: ch}}, h.Items)
}

// runBatches runs the job's batch script on every shard of items, in one
// pipeline, and returns how each request stands after it.
func (s *Store) runBatches(ctx context.Context, h *Handover, e *OutboxEntry, items []HandoverItem) (map[string]HandoverOutcome, error) {
	var overdue string
	if e.Op == "apply" {
		var err error
		if overdue, err = s.overdueOf(ctx, h, items); err != nil {
			return nil, err
		}
	}
	byShard := map[int][]HandoverItem{}
	for _, it := range items {
		sh, _ := shardFromID(it.Request)
		byShard[sh] = append(byShard[sh], it)
	}
	sc := map[string]*redis.Script{"apply": hoApplyBatchScript, "dispute": hoDisputeBatchScript}[e.Op]
	if sc == nil {
		sc = hoEndBatchScript
	}
	now := ms(s.opt.Now())
	pipe := s.rdb.Pipeline()
	var cmds []*redis.Cmd
	for shard, its := range byShard {
		for from := 0; from < len(its); from += handoverBatch {
			part := its[from:min(from+handoverBatch, len(its))]
			args := []any{now, s.keys.OutboxWake(shard), h.ID}
			switch e.Op {
			case "apply":
				args = append(args, overdue)
			case "dispute":
				args = append(args, e.NIC, string(e.Channel))
			default:
				args = append(args, e.Op, e.NIC, string(e.Channel))
			}
			args = append(args, len(part))
			for _, it := range part {
				args = append(args, it.Request)
			}
			cmds = append(cmds, sc.EvalSha(ctx, pipe, s.batchKeys(shard, part), args...))
		}
	}
	if err := s.execScripts(ctx, pipe, sc); err != nil {
		return nil, err
	}
	out := map[string]HandoverOutcome{}
	for _, c := range cmds {
		res, err := c.StringSlice()
		if err != nil {
			return nil, storeErr(err)
		}
		if e.Op == "dispute" {
			continue
		}
		for i := 0; i+2 < len(res); i += 3 {
			out[res[i]] = HandoverOutcome{Status: Status(res[i+1]), Why: ParseReason(res[i+2])}
		}
	}
	return out, nil
}

// overdueOf lists the billing contacts of a billing change that are
// behind with payments: the new one, and each service's current one.
func (s *Store) overdueOf(ctx context.Context, h *Handover, items []HandoverItem) (string, error) {
	to, ok := h.Changes[Billing]
	if !ok {
		return "", nil
	}
	nics := []string{to}
	for _, it := range items {
		if from := it.From[Billing]; from != "" {
			nics = append(nics, from)
		}
	}
	contacts, err := s.ReadContacts(ctx, nics)
	if err != nil {
		return "", err
	}
	var overdue []string
	for nic, c := range contacts {
		if !c.PaymentOK {
			overdue = append(overdue, nic)
		}
	}
	sort.Strings(overdue)
	return strings.Join(overdue, " "), nil
}

// jobDone ends the job on the hand-over's shard (see hoDoneScript).
func (s *Store) jobDone(ctx context.Context, h *Handover, e *OutboxEntry, items []HandoverItem, outcomes map[string]HandoverOutcome) error {
	var text strings.Builder
	applied, failed := 0, 0
	holders := map[string]bool{}
	for _, it := range items {
		o, ok := outcomes[it.Request]
		if !ok {
			continue
		}
		fmt.Fprintf(&text, "%s %s %s\n", it.Request, o.Status, o.Why)
		switch o.Status {
		case Applied:
			applied++
			for _, from := range it.From {
				if from != "" && !h.IsApprover(from) {
					holders[from] = true
				}
			}
		case Failed:
			failed++
		}
	}
	var informed []string
	for nic := range holders {
		informed = append(informed, nic)
	}
	sort.Strings(informed)
	shard, _ := shardFromID(h.ID)
	res, err := s.runHandover(ctx, hoDoneScript, shard, h.ID, nil, e.ID, e.Claim, e.Op, text.String(), applied, failed,
		strings.Join(informed, " "))
	if err != nil {
		return err
	}
	switch res[0] {
	case "ok":
		if e.Op == "apply" {
			s.count(repeat("applied", applied)...)
			s.count(repeat("failed", failed)...)
			s.pointHolders(ctx, h, items, outcomes)
		}
		return errJobSettled
	case "lost":
		return errClaimLost
	}
	return Errorf(ENotFound, "no hand-over with id %q", h.ID)
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// pointHolders writes the "My contacts" pointers of the new holders of
// the services whose requests were applied.
func (s *Store) pointHolders(ctx context.Context, h *Handover, items []HandoverItem, outcomes map[string]HandoverOutcome) {
	// One HSET per index bucket, whatever the number of services.
	fields := map[string][]any{}
	for _, it := range items {
		if outcomes[it.Request].Status != Applied {
			continue
		}
		for _, to := range h.Changes {
			key, field := nicEntry(s.keys, to, it.Service)
			fields[key] = append(fields[key], field, "")
		}
	}
	pipe := s.rdb.Pipeline()
	for key, fv := range fields {
		for from := 0; from < len(fv); from += 2000 {
			pipe.HSet(ctx, key, fv[from:min(from+2000, len(fv))]...)
		}
	}
	_, _ = pipe.Exec(ctx) // readers re-check each pointer
}
