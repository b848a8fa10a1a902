package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A hand-over is one change (role -> new NIC) asked by one requester on
// many services at once (SPEC section 2). It is made of one ordinary
// request per service, each checked by the rules and refused or made on
// its own; its approvers, the same for every service, get one email and
// one token for the whole hand-over, and decide every request at once.
// See handover_scripts.go for how it is stored.

// HandoverAsk is what a requester asks for, as received: without
// Services, every service on which the requester holds a role that the
// rules let it change that way.
type HandoverAsk struct {
	Requester string            `json:"requester"`
	Changes   map[string]string `json:"changes"`
	Services  []string          `json:"services"`
}

// Handover is a hand-over as the API shows it.
type Handover struct {
	ID        string          `json:"id"`
	Requester string          `json:"requester"`
	Changes   map[Role]string `json:"changes"`
	// Status is pending while any of its requests is, else applied when
	// all were applied, else ended.
	Status    string              `json:"status"`
	Requests  []HandoverRequest   `json:"requests"`
	Refused   []Refusal           `json:"refused"`
	Approvals map[string]Approval `json:"approvals"`
	CreatedAt time.Time           `json:"created_at"`
	ExpiresAt time.Time           `json:"expires_at"`

	// State is the hand-over's own state (see handover_scripts.go), End
	// how it ended (declined, expired, cancelled) if it did.
	State string `json:"-"`
	End   string `json:"-"`
	// Items are its requests with their services and the holders they
	// change, in service order; Outcomes how each ended, once carried out.
	Items    []HandoverItem             `json:"-"`
	Outcomes map[string]HandoverOutcome `json:"-"`
	// Informed are the previous holders told of the applied changes.
	Informed []string `json:"-"`
}

// HandoverOutcome is how one request of a hand-over ended once the
// hand-over's decision was carried out.
type HandoverOutcome struct {
	Status Status
	Why    Reason
}

// HandoverRequest is one request of a hand-over, as the API lists it.
type HandoverRequest struct {
	Service string `json:"service"`
	ID      string `json:"id"`
	Status  Status `json:"status"`
}

// Refusal is a service a hand-over left out, with the refusal's code and
// message as a request alone would have been refused.
type Refusal struct {
	Service string `json:"service"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HandoverItem is one request of a hand-over as it is kept with it: its
// service, the service's kind, and the holder of each role it changes.
type HandoverItem struct {
	Request string
	Service string
	Kind    string
	From    map[Role]string
}

// line writes an item as a line of Keys.HandoverItems.
func (it HandoverItem) line() string {
	f := []string{it.Request, it.Service, it.Kind}
	for _, r := range Roles {
		f = append(f, it.From[r])
	}
	return strings.Join(f, "\t") + "\n"
}

// parseItems reads Keys.HandoverItems.
func parseItems(text string) []HandoverItem {
	var out []HandoverItem
	for _, l := range strings.Split(text, "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3+len(Roles) || !ValidRequestID(f[0]) {
			continue
		}
		it := HandoverItem{Request: f[0], Service: f[1], Kind: f[2], From: map[Role]string{}}
		for i, r := range Roles {
			if f[3+i] != "" {
				it.From[r] = f[3+i]
			}
		}
		out = append(out, it)
	}
	return out
}

// handoverKeys are the keys of a hand-over and its shard, in the order
// its scripts take them (see handover_scripts.go).
func (s *Store) handoverKeys(shard int, id string) []string {
	k := s.keys
	return append([]string{k.Handover(shard, id), k.HandoverHistory(shard, id), k.HandoverItems(shard, id),
		k.HandoverRefused(shard, id), k.HandoverOutcomes(shard, id), k.DueHandoverExpire(shard),
		k.DueHandoverRemind(shard), k.DueHandoverCreate(shard)}, s.outboxKeys(shard)...)
}

// runHandover runs a hand-over script; ARGV after the time and wake
// channel start with the hand-over's id.
func (s *Store) runHandover(ctx context.Context, sc *redis.Script, shard int, id string, extra []string, args ...any) ([]string, error) {
	keys := append(s.handoverKeys(shard, id), extra...)
	return s.run(ctx, sc, keys, s.keys.OutboxWake(shard), append([]any{id}, args...)...)
}

// batchKeys are the keys of a batch script on shard: its tally and
// outbox, then each request's record, history and service.
func (s *Store) batchKeys(shard int, items []HandoverItem) []string {
	keys := append([]string{s.keys.Stats(shard)}, s.outboxKeys(shard)...)
	for _, it := range items {
		keys = append(keys, s.keys.Request(shard, it.Request), s.keys.History(shard, it.Request), s.keys.Service(it.Service))
	}
	return keys
}

// handoverRef checks the shape of a hand-over id and returns its shard.
func handoverRef(id string) (int, error) {
	if !ValidRequestID(id) {
		return 0, Errorf(ENotFound, "no hand-over with id %q", clip(id))
	}
	shard, _ := shardFromID(id)
	return shard, nil
}

// GetHandover returns a hand-over with the status of each of its
// requests.
func (s *Store) GetHandover(ctx context.Context, id string) (*Handover, error) {
	h, err := s.readHandover(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.handoverStatuses(ctx, h); err != nil {
		return nil, err
	}
	return h, nil
}

// readHandover reads a hand-over, its items, refusals and outcomes, in one
// round trip; the requests' statuses are not read.
func (s *Store) readHandover(ctx context.Context, id string) (*Handover, error) {
	shard, err := handoverRef(id)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	f := pipe.HGetAll(ctx, s.keys.Handover(shard, id))
	items := pipe.Get(ctx, s.keys.HandoverItems(shard, id))
	refused := pipe.Get(ctx, s.keys.HandoverRefused(shard, id))
	outcomes := pipe.Get(ctx, s.keys.HandoverOutcomes(shard, id))
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	h, err := s.decodeHandover(id, f.Val())
	if err != nil {
		return nil, err
	}
	h.Items = parseItems(items.Val())
	for _, l := range strings.Split(refused.Val(), "\n") {
		var r Refusal
		if json.Unmarshal([]byte(l), &r) == nil && r.Service != "" {
			h.Refused = append(h.Refused, r)
		}
	}
	if o := outcomes.Val(); o != "" {
		h.Outcomes = map[string]HandoverOutcome{}
		for _, l := range strings.Split(o, "\n") {
			if f := strings.Fields(l); len(f) >= 2 {
				out := HandoverOutcome{Status: Status(f[1])}
				if len(f) > 2 {
					out.Why = ParseReason(f[2])
				}
				h.Outcomes[f[0]] = out
			}
		}
	}
	return h, nil
}

// decodeHandover reads a hand-over's fields.
func (s *Store) decodeHandover(id string, f map[string]string) (*Handover, error) {
	if len(f) == 0 || f["st"] == "refused" {
		return nil, Errorf(ENotFound, "no hand-over with id %q", id)
	}
	h := &Handover{ID: id, Requester: f["req"], State: f["st"], End: f["end"], Approvals: map[string]Approval{},
		Requests: []HandoverRequest{}, Refused: []Refusal{}, Informed: strings.Fields(f["inf"])}
	if err := json.Unmarshal([]byte(f["chg"]), &h.Changes); err != nil {
		return nil, fmt.Errorf("workflow: hand-over %s: changes: %w", id, err)
	}
	c, _ := strconv.ParseInt(f["c"], 10, 64)
	x, _ := strconv.ParseInt(f["x"], 10, 64)
	h.CreatedAt, h.ExpiresAt = fromMS(c), fromMS(x)
	h.Approvals = approvalsOf(f)
	return h, nil
}

// approvalsOf reads the approvals of the fields of a request or a
// hand-over.
func approvalsOf(f map[string]string) map[string]Approval {
	out := map[string]Approval{}
	for _, nic := range strings.Fields(f["apv"]) {
		a := Approval{Status: ApprovalState(f["s:"+nic]), Channel: Channel(f["c:"+nic]), Undeliverable: f["u:"+nic] == "1"}
		a.Reminders, _ = strconv.Atoi(f["r:"+nic])
		if v, err := strconv.ParseInt(f["a:"+nic], 10, 64); err == nil {
			t := fromMS(v)
			a.At = &t
		}
		out[nic] = a
	}
	return out
}

// handoverStatuses reads the status of each request of h (one round trip)
// and sets h.Requests and h.Status.
func (s *Store) handoverStatuses(ctx context.Context, h *Handover) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(h.Items))
	for i, it := range h.Items {
		shard, _ := shardFromID(it.Request)
		cmds[i] = pipe.HMGet(ctx, s.keys.Request(shard, it.Request), "st", "x")
	}
	if len(cmds) > 0 {
		if err := execReads(ctx, pipe); err != nil {
			return err
		}
	}
	now := s.opt.Now()
	pending, applied := false, 0
	h.Requests = make([]HandoverRequest, 0, len(h.Items))
	for i, it := range h.Items {
		v := cmds[i].Val()
		st, _ := v[0].(string)
		if xs, _ := v[1].(string); st == string(Pending) {
			if x, err := strconv.ParseInt(xs, 10, 64); err == nil && !now.Before(fromMS(x)) {
				st = string(Expired)
			}
		}
		switch Status(st) {
		case Pending, Approved:
			pending = true
		case Applied:
			applied++
		}
		h.Requests = append(h.Requests, HandoverRequest{Service: it.Service, ID: it.Request, Status: Status(st)})
	}
	switch {
	case pending:
		h.Status = string(Pending)
	case applied == len(h.Items) && applied > 0:
		h.Status = string(Applied)
	default:
		h.Status = "ended"
	}
	return nil
}

// CreateHandover checks a hand-over service by service and stores it: one
// request per service the rules allow, the others refused with their
// code; the approvers' validation emails are queued with it. It is
// refused as a whole, with the first refusal's code, when no service is
// left. With an idempotency key, a second call with the same key within
// a day returns the hand-over the first made.
func (s *Store) CreateHandover(ctx context.Context, a HandoverAsk, ch Channel, idempotencyKey string) (*Handover, error) {
	requester, changes, err := s.nics.checkShape(Ask{Service: "-", Requester: a.Requester, Changes: a.Changes})
	if err != nil {
		return nil, err
	}
	services, err := s.checkServices(a.Services)
	if err != nil {
		return nil, err
	}
	id := newRequestID(int(randomShard()))
	if idempotencyKey != "" {
		if prior, err := s.claimIdempotency(ctx, idempotencyKey, id); err != nil || prior != "" {
			if err != nil {
				return nil, err
			}
			return s.GetHandover(ctx, prior)
		}
	}
	h, err := s.createHandover(ctx, id, requester, changes, services, ch)
	if err != nil && idempotencyKey != "" {
		_ = s.rdb.Del(context.WithoutCancel(ctx), s.keys.HandoverIdempotency(idempotencyKey)).Err()
	}
	return h, err
}

// randomShard picks the shard of a new hand-over.
func randomShard() byte {
	b := randomB32(1)
	sh, _ := shardFromID(b)
	return byte(sh)
}

// claimIdempotency records that key creates hand-over id, or returns the
// hand-over an earlier call with the key created.
func (s *Store) claimIdempotency(ctx context.Context, key, id string) (string, error) {
	if len(key) > 200 {
		return "", Errorf(EInvalidRequest, "the idempotency key is longer than 200 characters")
	}
	k := s.keys.HandoverIdempotency(key)
	ok, err := s.rdb.SetNX(ctx, k, id, 24*time.Hour).Result()
	if err != nil {
		return "", storeErr(err)
	}
	if ok {
		return "", nil
	}
	prior, err := s.rdb.Get(ctx, k).Result()
	if errors.Is(err, redis.Nil) {
		return s.claimIdempotency(ctx, key, id)
	}
	return prior, storeErr(err)
}

// checkServices checks the list of services asked for: valid ids, each
// once, at most max_handover_services.
func (s *Store) checkServices(list []string) ([]string, error) {
	if len(list) > s.opt.MaxHandoverServices {
		return nil, Errorf(EInvalidRequest, "services lists %d services, more than the %d a hand-over may cover (workflow.max_handover_services)",
			len(list), s.opt.MaxHandoverServices)
	}
	seen := map[string]bool{}
	var out []string
	for _, id := range list {
		id = strings.TrimSpace(id)
		if !ValidServiceID(id) {
			return nil, Errorf(EInvalidRequest, "services: %q is not a valid service id", clip(id))
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// handoverPlan is a hand-over checked against the directory: a plan per
// service that passed the rules, a refusal per one that did not.
type handoverPlan struct {
	plans   []*Plan
	refused []Refusal
	// firstErr is the first refusal, for a hand-over refused as a whole.
	firstErr error
}

// planHandover applies the rules to every service: those given, or every
// service where the requester holds a role it may change that way.
func (s *Store) planHandover(ctx context.Context, requester string, changes map[Role]string, services []string) (*handoverPlan, error) {
	implicit := services == nil
	if implicit {
		// The index's pointers, unchecked: each service is read and its
		// holders checked below, once.
		ids, err := s.indexedServices(ctx, requester)
		if err != nil {
			return nil, err
		}
		sort.Strings(ids)
		services = slices.Compact(ids)
		if len(services) > s.opt.MaxHandoverServices {
			return nil, Errorf(EInvalidRequest, "%s may change %d services this way, more than the %d a hand-over may cover (workflow.max_handover_services): name the services",
				requester, len(services), s.opt.MaxHandoverServices)
		}
	}
	svcs, contacts, err := s.readDirectoryMany(ctx, services, requester, changes)
	if err != nil {
		return nil, err
	}
	// The people are the same on every service: an unknown one refuses
	// the whole hand-over, as it would a request.
	if contacts[requester] == nil {
		return nil, Errorf(EUnknownContact, "requester %s is not in the directory", requester)
	}
	for _, r := range Roles {
		if nic, ok := changes[r]; ok && contacts[nic] == nil {
			return nil, Errorf(EUnknownContact, "%s is not in the directory", nic)
		}
	}
	hp := &handoverPlan{}
	for _, id := range services {
		p, err := decide(requester, changes, svcs[id], contacts)
		if err == nil {
			hp.plans = append(hp.plans, p)
			continue
		}
		code := ErrorCode(err)
		if implicit && (code == ENotAContact || code == ERoleNotAllowed) {
			continue // not a service this hand-over covers
		}
		hp.refuse(id, err)
	}
	if hp.firstErr == nil && len(hp.plans) == 0 {
		hp.firstErr = Errorf(ENotAContact, "%s holds no role it may change so on any service", requester)
	}
	return hp, nil
}

func (hp *handoverPlan) refuse(service string, err error) {
	if hp.firstErr == nil {
		hp.firstErr = err
	}
	hp.refused = append(hp.refused, Refusal{Service: service, Code: ErrorCode(err), Message: ErrorMessage(err)})
}

// readDirectoryMany reads the services and every contact the rules need
// (the requester, the new holders, the current billing contacts of a
// billing change), in pipelines of a thousand.
func (s *Store) readDirectoryMany(ctx context.Context, services []string, requester string, changes map[Role]string) (map[string]*Service, map[string]*Contact, error) {
	svcs := map[string]*Service{}
	for from := 0; from < len(services); from += 1000 {
		chunk := services[from:min(from+1000, len(services))]
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(chunk))
		for i, id := range chunk {
			cmds[i] = pipe.HGetAll(ctx, s.keys.Service(id))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, storeErr(err)
		}
		for i, id := range chunk {
			if h := cmds[i].Val(); len(h) > 0 {
				svcs[id] = decodeService(id, h)
			}
		}
	}
	nics := []string{requester}
	for _, r := range Roles {
		if nic, ok := changes[r]; ok {
			nics = append(nics, nic)
		}
	}
	if _, ok := changes[Billing]; ok {
		for _, v := range svcs {
			nics = append(nics, v.Billing)
		}
	}
	contacts, err := s.ReadContacts(ctx, nics)
	if err != nil {
		return nil, nil, err
	}
	all := map[string]*Contact{}
	for _, nic := range nics {
		all[nic] = contacts[nic] // nil: not in the directory
	}
	return svcs, all, nil
}

// createHandover plans and writes a hand-over; see CreateHandover.
func (s *Store) createHandover(ctx context.Context, id, requester string, changes map[Role]string, services []string, ch Channel) (*Handover, error) {
	hp, err := s.planHandover(ctx, requester, changes, services)
	if err != nil {
		return nil, err
	}
	if len(hp.plans) == 0 {
		return nil, hp.firstErr
	}
	shard, _ := shardFromID(id)
	now := s.opt.Now()
	expires := now.Add(s.opt.RequestTTL)
	approvers := hp.plans[0].Approvers
	chg, _ := json.Marshal(changes)
	var planned strings.Builder
	items := make([]HandoverItem, len(hp.plans))
	for i, p := range hp.plans {
		items[i] = itemOf(newRequestID(ShardOf(p.Service.ID)), p)
		planned.WriteString(items[i].line())
	}
	if _, err := s.runHandover(ctx, hoCreateScript, shard, id, nil, requester, string(chg), strings.Join(approvers, " "),
		ms(expires), string(ch), planned.String(), refusalText(hp.refused), ms(now.Add(handoverRepairAfter))); err != nil {
		return nil, err
	}
	if err := s.pointHandover(ctx, id, now, append([]string{requester}, approvers...)); err != nil {
		return nil, err
	}
	made, refused, err := s.makeRequests(ctx, id, hp.plans, items, expires, ch)
	if err != nil {
		return nil, err // the sweep finishes the creation (see RepairHandovers)
	}
	hp.refused = append(hp.refused, refused...)
	if err := s.finalizeHandover(ctx, id, made, hp.refused); err != nil {
		return nil, err
	}
	if len(made) == 0 {
		return nil, hp.firstErrOr(refused)
	}
	s.count("handover_created")
	h, err := s.readHandover(ctx, id)
	if err != nil {
		return nil, err
	}
	// Every request just made is pending: no need to read them back.
	h.Status = string(Pending)
	for _, it := range h.Items {
		h.Requests = append(h.Requests, HandoverRequest{Service: it.Service, ID: it.Request, Status: Pending})
	}
	return h, nil
}

// handoverRepairAfter is how long a hand-over may stay half created
// before a sweep finishes its creation (its daemon stopped).
const handoverRepairAfter = time.Minute

func (hp *handoverPlan) firstErrOr(refused []Refusal) error {
	if hp.firstErr != nil {
		return hp.firstErr
	}
	if len(refused) > 0 {
		return &Error{Code: refused[0].Code, Message: refused[0].Message}
	}
	return Errorf(EConflict, "no service could be handed over")
}

// itemOf is the item of a planned request.
func itemOf(id string, p *Plan) HandoverItem {
	it := HandoverItem{Request: id, Service: p.Service.ID, Kind: p.Service.Kind, From: map[Role]string{}}
	for r, c := range p.Changes {
		it.From[r] = c.From
	}
	return it
}

func refusalText(rs []Refusal) string {
	var b strings.Builder
	for _, r := range rs {
		j, _ := json.Marshal(r)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// pointHandover writes the "My requests" pointers of the requester and
// the approvers to the hand-over.
func (s *Store) pointHandover(ctx context.Context, id string, now time.Time, nics []string) error {
	pipe := s.rdb.Pipeline()
	for _, nic := range nics {
		pipe.ZAdd(ctx, s.keys.NICHandovers(nic), redis.Z{Score: float64(ms(now)), Member: id})
	}
	_, err := pipe.Exec(ctx)
	return storeErr(err)
}

// makeRequests writes the planned requests of a hand-over, shard by shard
// in batches; a service that changed meanwhile is checked again, and one
// still changing or held by another open request is refused. It returns
// the items made and the services refused.
func (s *Store) makeRequests(ctx context.Context, id string, plans []*Plan, items []HandoverItem, expires time.Time, ch Channel) ([]HandoverItem, []Refusal, error) {
	var made []HandoverItem
	var refused []Refusal
	for attempt := 0; len(plans) > 0; attempt++ {
		stale, err := s.makeBatches(ctx, id, plans, items, expires, ch, &made, &refused)
		if err != nil {
			return nil, nil, err
		}
		plans, items = nil, nil
		for _, p := range stale {
			if attempt == 2 {
				refused = append(refused, Refusal{Service: p.Service.ID, Code: EConflict,
					Message: fmt.Sprintf("service %s keeps changing; try again", p.Service.ID)})
				continue
			}
			np, err := s.plan(ctx, p.Service.ID, p.Requester, toChanges(p.Changes))
			if err != nil {
				if ErrorCode(err) == EUnavailable {
					return nil, nil, err
				}
				refused = append(refused, Refusal{Service: p.Service.ID, Code: ErrorCode(err), Message: ErrorMessage(err)})
				continue
			}
			plans = append(plans, np)
			items = append(items, itemOf(newRequestID(ShardOf(np.Service.ID)), np))
		}
	}
	sort.Slice(made, func(i, j int) bool { return made[i].Service < made[j].Service })
	return made, refused, nil
}

func toChanges(c map[Role]Change) map[Role]string {
	out := map[Role]string{}
	for r, ch := range c {
		out[r] = ch.To
	}
	return out
}

// handoverBatch is the most requests one batch script handles.
const handoverBatch = 500

// makeBatches runs the create batch script on every shard of the plans
// and adds what it made and refused; it returns the plans found stale.
func (s *Store) makeBatches(ctx context.Context, id string, plans []*Plan, items []HandoverItem, expires time.Time, ch Channel, made *[]HandoverItem, refused *[]Refusal) ([]*Plan, error) {
	byShard := map[int][]int{}
	for i, it := range items {
		sh, _ := shardFromID(it.Request)
		byShard[sh] = append(byShard[sh], i)
	}
	type call struct {
		idx []int
		cmd *redis.Cmd
	}
	var calls []call
	pipe := s.rdb.Pipeline()
	now := s.opt.Now()
	// The "My requests" pointers of the people told: one ZADD per person.
	told := map[string][]redis.Z{}
	for shard, idx := range byShard {
		for from := 0; from < len(idx); from += handoverBatch {
			part := idx[from:min(from+handoverBatch, len(idx))]
			var its []HandoverItem
			args := []any{ms(now), "", id, len(part)}
			for _, i := range part {
				its = append(its, items[i])
				args = append(args, s.batchSpec(items[i], plans[i], expires, ch))
				for _, nic := range plans[i].Informed {
					told[nic] = append(told[nic], redis.Z{Score: float64(ms(now)), Member: items[i].Request})
				}
			}
			calls = append(calls, call{part, hoCreateBatchScript.EvalSha(ctx, pipe, s.batchKeys(shard, its), args...)})
		}
	}
	for nic, zs := range told {
		for from := 0; from < len(zs); from += 1000 {
			pipe.ZAdd(ctx, s.keys.NICRequests(nic), zs[from:min(from+1000, len(zs))]...)
		}
	}
	if err := s.execScripts(ctx, pipe, hoCreateBatchScript); err != nil {
		return nil, err
	}
	var stale []*Plan
	for _, c := range calls {
		res, err := c.cmd.StringSlice()
		if err != nil {
			return nil, storeErr(err)
		}
		for j, i := range c.idx {
			st := ""
			if j < len(res) {
				st = res[j]
			}
			switch {
			case st == "ok":
				*made = append(*made, items[i])
			case st == "stale":
				stale = append(stale, plans[i])
			case strings.HasPrefix(st, "conflict "):
				other := strings.TrimPrefix(st, "conflict ")
				*refused = append(*refused, Refusal{Service: items[i].Service, Code: EConflict,
					Message: fmt.Sprintf("request %s is already open on %s for one of these roles", other, items[i].Service)})
			default:
				return nil, fmt.Errorf("workflow: hand-over %s: making the request of %s: %q", id, items[i].Service, st)
			}
		}
	}
	return stale, nil
}

// batchSpec is the JSON a create batch takes for one request.
func (s *Store) batchSpec(it HandoverItem, p *Plan, expires time.Time, ch Channel) string {
	chg, _ := json.Marshal(p.Changes)
	from := map[Role]string{}
	for r, c := range p.Changes {
		from[r] = c.From
	}
	b, _ := json.Marshal(map[string]any{"id": it.Request, "svc": p.Service.ID, "req": p.Requester, "x": ms(expires),
		"chg": string(chg), "apv": strings.Join(p.Approvers, " "), "inf": strings.Join(p.Informed, " "),
		"pay": strings.Join(p.PaymentNICs, " "), "ch": string(ch), "k": p.Service.Kind, "from": from})
	return string(b)
}

// execScripts runs a pipeline of calls of sc, loading it once if the
// server does not know it.
func (s *Store) execScripts(ctx context.Context, pipe redis.Pipeliner, sc *redis.Script) error {
	cmds, err := pipe.Exec(ctx)
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err != nil && !errors.Is(err, redis.Nil) {
			return storeErr(err)
		}
		return nil
	}
	if err := sc.Load(ctx, s.rdb).Err(); err != nil {
		return storeErr(err)
	}
	again := s.rdb.Pipeline()
	for _, c := range cmds {
		_ = again.Process(ctx, c)
	}
	if _, err := again.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return storeErr(err)
	}
	return nil
}

// finalizeHandover ends a creation with the requests made.
func (s *Store) finalizeHandover(ctx context.Context, id string, made []HandoverItem, refused []Refusal) error {
	shard, _ := shardFromID(id)
	var text strings.Builder
	for _, it := range made {
		text.WriteString(it.line())
	}
	sort.Slice(refused, func(i, j int) bool { return refused[i].Service < refused[j].Service })
	res, err := s.runHandover(ctx, hoFinalizeScript, shard, id, nil, text.String(), refusalText(refused), len(made),
		ms(s.opt.Now().Add(s.opt.RemindAfter)))
	if err != nil {
		return err
	}
	switch res[0] {
	case "ok", "refused", "done":
		return nil
	case "corrupt":
		return fmt.Errorf("workflow: hand-over %s cannot be read", id)
	}
	return Errorf(ENotFound, "no hand-over with id %q", id)
}
