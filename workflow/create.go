package workflow

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// errStale is the internal code of a create that found the service changed
// since its rules were checked; Create checks again.
const errStale = "stale"

// Create checks an ask against every rule of SPEC section 2 and stores the
// new request, queueing the validation emails in the same step.
func (s *Store) Create(ctx context.Context, a Ask, ch Channel) (*Request, error) {
	requester, changes, err := s.nics.checkShape(a)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		plan, err := s.plan(ctx, a.Service, requester, changes)
		if err != nil {
			return nil, err
		}
		r, err := s.store(ctx, plan, ch, "")
		if ErrorCode(err) != errStale {
			return r, err
		}
		if attempt == 3 {
			return nil, Errorf(EConflict, "service %s keeps changing; try again", plan.Service.ID)
		}
		// The service changed between reading and writing: check again.
	}
}

// plan reads the service and contacts involved and applies the rules.
func (s *Store) plan(ctx context.Context, serviceID, requester string, changes map[Role]string) (*Plan, error) {
	nics := []string{requester}
	for _, r := range Roles {
		if nic, ok := changes[r]; ok && !contains(nics, nic) {
			nics = append(nics, nic)
		}
	}
	svc, contacts, err := s.readDirectory(ctx, serviceID, nics)
	if err != nil {
		return nil, err
	}
	if _, ok := changes[Billing]; ok && svc != nil && svc.Billing != "" {
		if _, seen := contacts[svc.Billing]; !seen {
			c, err := s.GetContact(ctx, svc.Billing)
			if err != nil && ErrorCode(err) != EUnknownContact {
				return nil, err
			}
			contacts[svc.Billing] = c
		}
	}
	return decide(requester, changes, svc, contacts)
}

// readDirectory reads a service and some contacts in one round trip.
func (s *Store) readDirectory(ctx context.Context, serviceID string, nics []string) (*Service, map[string]*Contact, error) {
	pipe := s.rdb.Pipeline()
	svcCmd := pipe.HGetAll(ctx, s.keys.Service(serviceID))
	cmds := make([]*redis.MapStringStringCmd, len(nics))
	for i, nic := range nics {
		cmds[i] = pipe.HGetAll(ctx, s.keys.Contact(nic))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, storeErr(err)
	}
	var svc *Service
	if h := svcCmd.Val(); len(h) > 0 {
		svc = decodeService(serviceID, h)
	}
	contacts := map[string]*Contact{}
	for i, nic := range nics {
		if h := cmds[i].Val(); len(h) > 0 {
			contacts[nic] = decodeContact(nic, h)
		} else {
			contacts[nic] = nil
		}
	}
	return svc, contacts, nil
}

// createArgs are the script arguments of a planned request (see
// createScript), after its id and service.
func (s *Store) createArgs(p *Plan, now, expires time.Time, ch Channel, handover string) []any {
	chg, _ := json.Marshal(p.Changes)
	args := []any{p.Requester, ms(expires), string(chg),
		strings.Join(p.Approvers, " "), strings.Join(p.Informed, " "), strings.Join(p.PaymentNICs, " "),
		string(ch), ms(now.Add(s.opt.RemindAfter)), p.Service.Kind, handover}
	for _, r := range Roles {
		if c, ok := p.Changes[r]; ok {
			args = append(args, string(r), c.From)
		}
	}
	return args
}

// store writes a planned request: the index pointers and the create script
// go out in one round trip.
func (s *Store) store(ctx context.Context, p *Plan, ch Channel, handover string) (*Request, error) {
	shard := ShardOf(p.Service.ID)
	id := newRequestID(shard)
	now := s.opt.Now()
	expires := now.Add(s.opt.RequestTTL)
	keys := s.requestKeys(shard, id, p.Service.ID)
	args := append([]any{ms(now), s.keys.OutboxWake(shard), id, p.Service.ID}, s.createArgs(p, now, expires, ch, handover)...)
	parties := append(append([]string{p.Requester}, p.Approvers...), p.Informed...)
	res, err := s.evalWithPointers(ctx, createScript, keys, args, func(pipe redis.Pipeliner) {
		for _, nic := range parties {
			pipe.ZAdd(ctx, s.keys.NICRequests(nic), redis.Z{Score: float64(ms(now)), Member: id})
		}
	})
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "ok":
		s.opt.Metrics.Transitions.WithLabelValues("created").Inc()
		return newRequest(id, p, now, expires, ch), nil
	case "stale", "exists":
		s.dropPointers(ctx, id, parties)
		return nil, &Error{Code: errStale, Message: "the service changed meanwhile"}
	case "conflict":
		s.dropPointers(ctx, id, parties)
		return nil, &Error{Code: EConflict, RequestID: res[1],
			Message: fmt.Sprintf("request %s is already open on %s for one of these roles", res[1], p.Service.ID)}
	}
	return nil, fmt.Errorf("workflow: create: unexpected reply %v", res)
}

// newRequest is the request the create script has just written.
func newRequest(id string, p *Plan, now, expires time.Time, ch Channel) *Request {
	r := &Request{ID: id, Service: p.Service.ID, Requester: p.Requester, Changes: p.Changes, Status: Pending,
		Approvals: map[string]Approval{}, Informed: append([]string{}, p.Informed...),
		CreatedAt: fromMS(ms(now)), ExpiresAt: fromMS(ms(expires)),
		History: []Event{{At: fromMS(ms(now)), Event: "created", NIC: p.Requester, Channel: ch}}}
	for _, nic := range p.Approvers {
		r.Approvals[nic] = Approval{Status: ApprovalPending}
	}
	return r
}

// evalWithPointers sends index writes and a script in one pipeline. The
// scripts are loaded first if the server does not know them.
func (s *Store) evalWithPointers(ctx context.Context, sc *redis.Script, keys []string, args []any, pointers func(redis.Pipeliner)) ([]string, error) {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		pointers(pipe)
		cmd := sc.EvalSha(ctx, pipe, keys, args...)
		_, _ = pipe.Exec(ctx)
		err := cmd.Err()
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return nil, storeErr(err)
			}
			continue
		}
		if err != nil {
			return nil, storeErr(err)
		}
		return cmd.StringSlice()
	}
}

func (s *Store) dropPointers(ctx context.Context, id string, nics []string) {
	pipe := s.rdb.Pipeline()
	for _, nic := range nics {
		pipe.ZRem(ctx, s.keys.NICRequests(nic), id)
	}
	_, _ = pipe.Exec(ctx) // best effort: readers skip pointers to nothing
}
