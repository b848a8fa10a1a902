package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"contactd/metrics"
)

// Options are the workflow settings of the configuration (SPEC section 8).
type Options struct {
	KeyPrefix    string
	NICPattern   string
	RequestTTL   time.Duration
	RemindAfter  time.Duration
	MaxReminders int
	ReportWindow time.Duration
	// DefaultLanguage is given to contacts stored without one ("en" if unset).
	DefaultLanguage string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// EventsMaxLen caps the events stream, approximately (default
	// EventsMaxLen).
	EventsMaxLen int64
	// Metrics counts the transitions; nil counts into a registry nobody
	// serves.
	Metrics *metrics.Metrics
	// Logger receives what the store notices on its own (a sweep's bad
	// items); nil means slog.Default().
	Logger *slog.Logger
}

// Store keeps the directory and the change requests in Redis.
type Store struct {
	rdb  redis.UniversalClient
	keys Keys
	nics NICs
	opt  Options
}

// NewStore returns a store on rdb.
func NewStore(rdb redis.UniversalClient, opt Options) (*Store, error) {
	nics, err := NewNICs(opt.NICPattern)
	if err != nil {
		return nil, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.EventsMaxLen <= 0 {
		opt.EventsMaxLen = EventsMaxLen
	}
	opt.Metrics = metrics.Or(opt.Metrics)
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.KeyPrefix == "" {
		opt.KeyPrefix = "contactd"
	}
	if opt.DefaultLanguage == "" {
		opt.DefaultLanguage = "en"
	}
	return &Store{rdb: rdb, keys: Keys{Prefix: opt.KeyPrefix}, nics: nics, opt: opt}, nil
}

// NICs returns the NIC checker of the configured pattern.
func (s *Store) NICs() NICs { return s.nics }

// Now returns the store's clock reading.
func (s *Store) Now() time.Time { return s.opt.Now() }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// run executes a script and returns its reply as strings.
func (s *Store) run(ctx context.Context, sc *redis.Script, shard int, keys []string, args ...any) ([]string, error) {
	argv := append([]any{s.keys.Shard(shard), ms(s.opt.Now())}, args...)
	res, err := sc.Run(ctx, s.rdb, keys, argv...).StringSlice()
	if err != nil {
		return nil, storeErr(err)
	}
	return res, nil
}

// storeErr turns a Redis failure into the domain's error: a server that
// cannot be reached (or is loading, or a Cluster that is down) is
// EUnavailable, anything else an internal error.
func storeErr(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) || errors.Is(err, context.Canceled) {
		return err
	}
	var nerr net.Error
	var operr *net.OpError
	switch {
	case errors.As(err, &nerr), errors.As(err, &operr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, redis.ErrClosed),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, context.DeadlineExceeded),
		redis.HasErrorPrefix(err, "LOADING"), redis.HasErrorPrefix(err, "CLUSTERDOWN"),
		redis.HasErrorPrefix(err, "TRYAGAIN"), redis.HasErrorPrefix(err, "MASTERDOWN"):
		return &Error{Code: EUnavailable, Message: "the store is unreachable"}
	}
	return fmt.Errorf("workflow: redis: %w", err)
}

// requestRef splits a request id into its shard and key.
func (s *Store) requestRef(id string) (int, string, error) {
	if !ValidRequestID(id) {
		return 0, "", Errorf(ENotFound, "no request with id %q", clip(id))
	}
	shard, _ := shardFromID(id)
	return shard, s.keys.Request(shard, id), nil
}

// Get returns the request with the given id. A pending request past its
// expiry time reads as expired even before a sweep has marked it.
func (s *Store) Get(ctx context.Context, id string) (*Request, error) {
	shard, _, err := s.requestRef(id)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	rc := s.queueRequest(ctx, pipe, shard, id)
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	h := rc.result()
	if len(h) == 0 {
		return nil, Errorf(ENotFound, "no request with id %q", id)
	}
	return s.decodeRequest(id, h)
}

// requestReads are the two reads of a request queued on a pipeline: its
// fields and its history.
type requestReads struct {
	fields *redis.MapStringStringCmd
	hist   *redis.StringCmd
}

func (s *Store) queueRequest(ctx context.Context, pipe redis.Pipeliner, shard int, id string) requestReads {
	return requestReads{fields: pipe.HGetAll(ctx, s.keys.Request(shard, id)), hist: pipe.Get(ctx, s.keys.History(shard, id))}
}

// result returns the request's fields with its whole history under "h"
// (a request stored before the history had a key of its own keeps its
// first lines there), or nil when there is no such request.
func (r requestReads) result() map[string]string {
	h := r.fields.Val()
	if len(h) == 0 {
		return nil
	}
	h["h"] += r.hist.Val()
	return h
}

// execReads runs a pipeline of reads; a missing key is no error.
func execReads(ctx context.Context, pipe redis.Pipeliner) error {
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return storeErr(err)
	}
	return nil
}

func (s *Store) decodeRequest(id string, h map[string]string) (*Request, error) {
	r := &Request{ID: id, Service: h["svc"], Requester: h["req"], Status: Status(h["st"]),
		Why: ParseReason(h["why"]), Approvals: map[string]Approval{}, Informed: strings.Fields(h["inf"])}
	r.Reason = r.Why.English(r.Service)
	if err := json.Unmarshal([]byte(h["chg"]), &r.Changes); err != nil {
		return nil, fmt.Errorf("workflow: request %s: changes: %w", id, err)
	}
	c, _ := strconv.ParseInt(h["c"], 10, 64)
	x, _ := strconv.ParseInt(h["x"], 10, 64)
	r.CreatedAt, r.ExpiresAt = fromMS(c), fromMS(x)
	if r.Status == Pending && !s.opt.Now().Before(r.ExpiresAt) {
		r.Status = Expired
	}
	for _, nic := range strings.Fields(h["apv"]) {
		a := Approval{Status: h["s:"+nic], Channel: Channel(h["c:"+nic]), Undeliverable: h["u:"+nic] == "1"}
		a.Reminders, _ = strconv.Atoi(h["r:"+nic])
		if v, err := strconv.ParseInt(h["a:"+nic], 10, 64); err == nil {
			t := fromMS(v)
			a.At = &t
		}
		r.Approvals[nic] = a
	}
	for _, line := range strings.Split(strings.TrimSpace(h["h"]), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		at, _ := strconv.ParseInt(f[0], 10, 64)
		ev := Event{At: fromMS(at), Event: f[1], Channel: Channel(f[3])}
		if f[2] != "-" {
			ev.NIC = f[2]
		}
		r.History = append(r.History, ev)
	}
	// Events are appended in the order the scripts ran; daemons' clocks may
	// differ by a few milliseconds, so they are shown in time order.
	sort.SliceStable(r.History, func(i, j int) bool { return r.History[i].At.Before(r.History[j].At) })
	if r.Informed == nil {
		r.Informed = []string{}
	}
	return r, nil
}

// List returns the requests where nic is requester, approver or informed,
// newest first, keeping only those of the given status when it is set.
func (s *Store) List(ctx context.Context, nic, status string) ([]*Request, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	if status != "" && !ValidStatus(status) {
		return nil, Errorf(EInvalidRequest, "unknown status %q", clip(status))
	}
	ids, err := s.rdb.ZRevRange(ctx, s.keys.NICRequests(nic), 0, -1).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]requestReads, 0, len(ids))
	valid := ids[:0]
	for _, id := range ids {
		if shard, ok := shardFromID(id); ok && ValidRequestID(id) {
			cmds = append(cmds, s.queueRequest(ctx, pipe, shard, id))
			valid = append(valid, id)
		}
	}
	out := []*Request{}
	if len(valid) == 0 {
		return out, nil
	}
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	for i, id := range valid {
		h := cmds[i].result()
		if len(h) == 0 {
			continue // a pointer written for a request that was refused
		}
		r, err := s.decodeRequest(id, h)
		if err != nil {
			return nil, err
		}
		if status == "" || string(r.Status) == status {
			out = append(out, r)
		}
	}
	return out, nil
}

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
		r, err := s.store(ctx, plan, ch)
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

// store writes a planned request: the index pointers and the create script
// go out in one round trip.
func (s *Store) store(ctx context.Context, p *Plan, ch Channel) (*Request, error) {
	shard := ShardOf(p.Service.ID)
	id := newRequestID(shard)
	now := s.opt.Now()
	expires := now.Add(s.opt.RequestTTL)
	chg, _ := json.Marshal(p.Changes)
	keys := []string{s.keys.Request(shard, id), s.keys.Service(p.Service.ID), s.keys.Open(p.Service.ID)}
	args := []any{s.keys.Shard(shard), ms(now), id, p.Service.ID, p.Requester, ms(expires), string(chg),
		strings.Join(p.Approvers, " "), strings.Join(p.Informed, " "), strings.Join(p.PaymentNICs, " "),
		string(ch), ms(now.Add(s.opt.RemindAfter))}
	for _, r := range Roles {
		if c, ok := p.Changes[r]; ok {
			args = append(args, string(r), c.From)
		}
	}
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
	case "stale":
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
		r.Approvals[nic] = Approval{Status: string(Pending)}
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

// Outcome is the result of a decision.
type Outcome struct {
	Request  *Request
	NIC      string
	Decision Decision
}

// LookupToken tells what a validation token is for, without changing
// anything: the request, the approver, and whether the token is live. A
// token that never existed is ENotFound; a used, revoked or expired one is
// EGone (with the request still returned, for logging only).
func (s *Store) LookupToken(ctx context.Context, token string) (*Request, string, error) {
	return s.lookup(ctx, token, "v")
}

func (s *Store) lookup(ctx context.Context, token, kind string) (*Request, string, error) {
	token, ok := NormalizeToken(token)
	if !ok {
		return nil, "", Errorf(ENotFound, "this link is not valid")
	}
	shard, _ := shardFromID(token)
	hash := HashToken(token)
	t, err := s.rdb.HGetAll(ctx, s.keys.Token(shard, hash)).Result()
	if err != nil {
		return nil, "", storeErr(err)
	}
	if len(t) == 0 || t["k"] != kind || !ValidRequestID(t["r"]) {
		return nil, "", Errorf(ENotFound, "this link is not valid")
	}
	pipe := s.rdb.Pipeline()
	rc := s.queueRequest(ctx, pipe, shard, t["r"])
	if err := execReads(ctx, pipe); err != nil {
		return nil, "", err
	}
	h := rc.result()
	if len(h) == 0 {
		return nil, "", Errorf(ENotFound, "this link is not valid")
	}
	r, err := s.decodeRequest(t["r"], h)
	if err != nil {
		return nil, "", err
	}
	gone := Errorf(EGone, "this link is no longer valid")
	if kind == "r" {
		x, _ := strconv.ParseInt(t["x"], 10, 64)
		if t["used"] != "" || ms(s.opt.Now()) >= x {
			return r, t["n"], gone
		}
		return r, t["n"], nil
	}
	if r.Status != Pending || (h["t:"+t["n"]] != hash && !slices.Contains(strings.Fields(h["p:"+t["n"]]), hash)) {
		return r, t["n"], gone
	}
	return r, t["n"], nil
}

// Decide records an approver's decision made with their token. When the
// last approver accepts, the request is approved and applied at once.
func (s *Store) Decide(ctx context.Context, token string, d Decision, ch Channel) (*Outcome, error) {
	token, ok := NormalizeToken(token)
	if !ok {
		return nil, Errorf(ENotFound, "this link is not valid")
	}
	return s.DecideByHash(ctx, HashToken(token), token[0], d, ch)
}

// DecideByHash is Decide for a caller that holds only the hash of a token
// and its first character (the shard), such as a reply matched by the
// Message-ID of the email that carried the token.
func (s *Store) DecideByHash(ctx context.Context, hash string, shardChar byte, d Decision, ch Channel) (*Outcome, error) {
	if d != Accept && d != Decline {
		return nil, Errorf(EInvalidRequest, "decision must be accept or decline")
	}
	shard, ok := shardFromID(string(shardChar))
	if !ok {
		return nil, Errorf(ENotFound, "this link is not valid")
	}
	res, err := s.run(ctx, decideScript, shard, []string{s.keys.Token(shard, hash)}, hash, string(d), string(ch))
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "unknown":
		return nil, Errorf(ENotFound, "this link is not valid")
	case "gone":
		return nil, Errorf(EGone, "this link is no longer valid")
	}
	s.opt.Metrics.Transitions.WithLabelValues(res[0]).Inc()
	switch res[0] {
	case "approved":
		// Apply at once; should that fail, the request stays approved and
		// the sweep applies it.
		_, _ = s.Apply(ctx, res[1])
	}
	return s.outcome(ctx, res, d)
}

func (s *Store) outcome(ctx context.Context, res []string, d Decision) (*Outcome, error) {
	r, err := s.Get(ctx, res[1])
	if err != nil {
		return nil, err
	}
	return &Outcome{Request: r, NIC: res[2], Decision: d}, nil
}

// Apply makes an approved request effective; it does nothing to a request
// in any other state, so it may be called any number of times.
func (s *Store) Apply(ctx context.Context, id string) (Status, error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return "", err
	}
	f, err := s.rdb.HMGet(ctx, key, "svc", "chg", "pay").Result()
	if err != nil {
		return "", storeErr(err)
	}
	if f[0] == nil {
		return "", Errorf(ENotFound, "no request with id %q", id)
	}
	var chg map[Role]Change
	if err := json.Unmarshal([]byte(f[1].(string)), &chg); err != nil {
		return "", fmt.Errorf("workflow: request %s: changes: %w", id, err)
	}
	pay, _ := f[2].(string)
	// Payments are re-checked just before the script, which re-checks the
	// role holders; the contacts live outside the shard, so this check
	// cannot be inside it.
	reason, err := s.paymentIssue(ctx, strings.Fields(pay))
	if err != nil {
		return "", err
	}
	args := []any{s.keys.Shard(shard), ms(s.opt.Now()), id, reason}
	res, err := s.evalWithPointers(ctx, applyScript, []string{key}, args, func(pipe redis.Pipeliner) {
		// "My contacts" pointers for the new holders; readers re-check them,
		// so writing them before the change is harmless if it fails.
		for _, c := range chg {
			s.pointServices(ctx, pipe, f[0].(string), c.To)
		}
	})
	if err != nil {
		return "", err
	}
	if st := Status(res[0]); st == Applied || st == Failed {
		s.opt.Metrics.Transitions.WithLabelValues(res[0]).Inc()
	}
	return Status(res[0]), nil
}

// paymentIssue returns why a billing change cannot be applied, or "".
func (s *Store) paymentIssue(ctx context.Context, nics []string) (string, error) {
	if len(nics) == 0 {
		return "", nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(nics))
	for i, nic := range nics {
		cmds[i] = pipe.HGet(ctx, s.keys.Contact(nic), "payment_ok")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return "", storeErr(err)
	}
	for i, nic := range nics {
		if v, err := cmds[i].Result(); err == nil && v != "1" {
			return fmt.Sprintf("billing contact %s is not up to date with payments", nic), nil
		}
	}
	return "", nil
}

// Cancel ends a pending request at its requester's demand.
func (s *Store) Cancel(ctx context.Context, id, nic string, ch Channel) (*Request, error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return nil, err
	}
	if nic, err = s.nics.Normalize(nic); err != nil {
		return nil, err
	}
	res, err := s.run(ctx, cancelScript, shard, []string{key}, id, nic, string(ch))
	if err != nil {
		return nil, err
	}
	switch res[0] {
	case "unknown":
		return nil, Errorf(ENotFound, "no request with id %q", id)
	case "forbidden":
		return nil, Errorf(ERoleNotAllowed, "only the requester may cancel request %s", id)
	case "notpending":
		return nil, &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf("request %s is %s, not pending", id, res[1])}
	}
	s.opt.Metrics.Transitions.WithLabelValues("cancelled").Inc()
	return s.Get(ctx, id)
}

// Resend queues a new email (with a new token) to one approver, or to
// every approver who has not answered when nic is empty. It returns how
// many emails were queued.
func (s *Store) Resend(ctx context.Context, id, nic string) (int, error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return 0, err
	}
	if nic != "" {
		if nic, err = s.nics.Normalize(nic); err != nil {
			return 0, err
		}
	}
	res, err := s.run(ctx, resendScript, shard, []string{key}, id, nic, s.opt.RemindAfter.Milliseconds())
	if err != nil {
		return 0, err
	}
	switch res[0] {
	case "unknown":
		return 0, Errorf(ENotFound, "no request with id %q", id)
	case "notpending":
		return 0, &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf("request %s is %s, not pending", id, res[1])}
	case "notapprover":
		return 0, Errorf(EInvalidRequest, "%s is not an approver of request %s", nic, id)
	case "answered":
		return 0, &Error{Code: EConflict, RequestID: id, Message: fmt.Sprintf("%s has already answered request %s", nic, id)}
	}
	n, _ := strconv.Atoi(res[1])
	return n, nil
}

// IssueToken issues an approver a token for the email about to be sent
// (of a kind that carries one), and returns it with its hash. The token
// is returned once and stored only as its hash. It works at once, but the
// approver's earlier token is revoked only when RecordSent records that
// the mail server accepted this email. A request no longer pending, or an
// approver who has already answered, gets no token (EGone): the email is
// no longer due.
func (s *Store) IssueToken(ctx context.Context, id, nic string, kind Kind) (token, hash string, err error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return "", "", err
	}
	if !kind.CarriesToken() {
		return "", "", Errorf(EInvalidRequest, "no token goes with a %q email", kind)
	}
	token = newToken(shard)
	hash = HashToken(token)
	res, err := s.run(ctx, tokenScript, shard, []string{key, s.keys.Token(shard, hash)},
		id, nic, hash, s.opt.RequestTTL.Milliseconds(), maxPending)
	if err != nil {
		return "", "", err
	}
	switch res[0] {
	case "ok":
		return token, hash, nil
	case "unknown":
		return "", "", Errorf(ENotFound, "no approver %s on request %s", nic, id)
	}
	return "", "", Errorf(EGone, "request %s no longer awaits %s", id, nic)
}

// IssueReportToken gives a previous holder told of an applied change the
// token of its "this wasn't me" link, valid for workflow.report_window.
func (s *Store) IssueReportToken(ctx context.Context, id, nic string) (string, error) {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return "", err
	}
	token := newToken(shard)
	hash := HashToken(token)
	res, err := s.run(ctx, reportTokenScript, shard, []string{key, s.keys.Token(shard, hash)},
		id, nic, hash, s.opt.ReportWindow.Milliseconds(), s.opt.RequestTTL.Milliseconds())
	if err != nil {
		return "", err
	}
	if res[0] != "ok" {
		return "", Errorf(ENotFound, "%s was not informed of request %s", nic, id)
	}
	return token, nil
}

// LookupReport is LookupToken for a "this wasn't me" token.
func (s *Store) LookupReport(ctx context.Context, token string) (*Request, string, error) {
	return s.lookup(ctx, token, "r")
}

// Dispute records a "this wasn't me" report; it reverts nothing by itself
// but queues the event and the email to the security contact.
func (s *Store) Dispute(ctx context.Context, token string, ch Channel) (*Request, string, error) {
	token, ok := NormalizeToken(token)
	if !ok {
		return nil, "", Errorf(ENotFound, "this link is not valid")
	}
	shard, _ := shardFromID(token)
	res, err := s.run(ctx, disputeScript, shard, []string{s.keys.Token(shard, HashToken(token))}, string(ch))
	if err != nil {
		return nil, "", err
	}
	switch res[0] {
	case "unknown":
		return nil, "", Errorf(ENotFound, "this link is not valid")
	case "gone":
		return nil, "", Errorf(EGone, "this link is no longer valid")
	}
	r, err := s.Get(ctx, res[1])
	return r, res[2], err
}

// MarkUndeliverable records that an email to an approver bounced.
func (s *Store) MarkUndeliverable(ctx context.Context, id, nic string) error {
	shard, key, err := s.requestRef(id)
	if err != nil {
		return err
	}
	res, err := s.run(ctx, undeliverableScript, shard, []string{key}, id, nic)
	if err != nil {
		return err
	}
	if res[0] == "unknown" {
		return Errorf(ENotFound, "no approver %s on request %s", nic, id)
	}
	return nil
}
