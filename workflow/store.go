package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
	// MaxHandoverServices bounds the services of one hand-over (default
	// 10000).
	MaxHandoverServices int
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
	if opt.MaxHandoverServices <= 0 {
		opt.MaxHandoverServices = 10000
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

// run executes a script on keys and returns its reply as strings.
// ARGV[1] is the time in ms, ARGV[2] the channel that wakes the mailers
// when the script queues an entry (see scripts.go).
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, wake string, args ...any) ([]string, error) {
	argv := append([]any{ms(s.opt.Now()), wake}, args...)
	res, err := sc.Run(ctx, s.rdb, keys, argv...).StringSlice()
	if err != nil {
		return nil, storeErr(err)
	}
	return res, nil
}

// requestKeys are the keys of a request, its service and its shard, in
// the order the per-request scripts take them (see scripts.go).
func (s *Store) requestKeys(shard int, id, serviceID string) []string {
	k := s.keys
	return append([]string{k.Request(shard, id), k.History(shard, id), k.Service(serviceID),
		k.DueExpire(shard), k.DueRemind(shard), k.DueApply(shard), k.Stats(shard)}, s.outboxKeys(shard)...)
}

// runRequest runs a per-request script: KEYS are requestKeys and extra,
// ARGV after the time and wake channel start with the request's id and
// service.
func (s *Store) runRequest(ctx context.Context, sc *redis.Script, shard int, id, serviceID string, extra []string, args ...any) ([]string, error) {
	keys := append(s.requestKeys(shard, id, serviceID), extra...)
	return s.run(ctx, sc, keys, s.keys.OutboxWake(shard), append([]any{id, serviceID}, args...)...)
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
	r, err := s.decodeRequest(id, h)
	if err != nil {
		return nil, err
	}
	if err := s.withHandovers(ctx, []*Request{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// withHandovers gives the requests of a hand-over what they hold of it:
// their approvals are the hand-over's, and their history has the
// approvers' events on it (sent, accepted, reminded...). Each hand-over is
// read once, in one round trip for all.
func (s *Store) withHandovers(ctx context.Context, reqs []*Request) error {
	type reads struct {
		fields *redis.MapStringStringCmd
		hist   *redis.StringCmd
	}
	ho := map[string]reads{}
	pipe := s.rdb.Pipeline()
	for _, r := range reqs {
		if r.Handover == "" {
			continue
		}
		if _, ok := ho[r.Handover]; ok {
			continue
		}
		shard, err := handoverRef(r.Handover)
		if err != nil {
			continue
		}
		ho[r.Handover] = reads{pipe.HGetAll(ctx, s.keys.Handover(shard, r.Handover)),
			pipe.Get(ctx, s.keys.HandoverHistory(shard, r.Handover))}
	}
	if len(ho) == 0 {
		return nil
	}
	if err := execReads(ctx, pipe); err != nil {
		return err
	}
	for _, r := range reqs {
		rd, ok := ho[r.Handover]
		if !ok || len(rd.fields.Val()) == 0 {
			continue
		}
		r.Approvals = approvalsOf(rd.fields.Val())
		if r.History != nil {
			// The hand-over's events first: at the same millisecond, a
			// decision on it comes before what it caused on the request.
			r.History = append(decodeHistory(rd.hist.Val()), r.History...)
			sort.SliceStable(r.History, func(i, j int) bool { return r.History[i].At.Before(r.History[j].At) })
		}
	}
	return nil
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
	r := &Request{ID: id, Service: h["svc"], Requester: h["req"], Status: Status(h["st"]), Handover: h["ho"],
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
		a := Approval{Status: ApprovalState(h["s:"+nic]), Channel: Channel(h["c:"+nic]), Undeliverable: h["u:"+nic] == "1"}
		a.Reminders, _ = strconv.Atoi(h["r:"+nic])
		if v, err := strconv.ParseInt(h["a:"+nic], 10, 64); err == nil {
			t := fromMS(v)
			a.At = &t
		}
		r.Approvals[nic] = a
	}
	r.History = decodeHistory(h["h"])
	if r.Informed == nil {
		r.Informed = []string{}
	}
	return r, nil
}

// decodeHistory reads a history: one "ms event nic channel" line per
// event. Events are appended in the order the scripts ran; daemons'
// clocks may differ by a few milliseconds, so they are returned in time
// order.
func decodeHistory(text string) []Event {
	var out []Event
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		at, _ := strconv.ParseInt(f[0], 10, 64)
		ev := Event{At: fromMS(at), Event: f[1], Channel: Channel(f[3])}
		if f[2] != "-" {
			ev.NIC = f[2]
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
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
	ids, err := s.listIDs(ctx, nic)
	if err != nil {
		return nil, err
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, s.withHandovers(ctx, out)
}

// listIDs returns the ids of the requests nic takes part in, newest
// first: those it points to, and those of the hand-overs it is the
// requester or an approver of.
func (s *Store) listIDs(ctx context.Context, nic string) ([]string, error) {
	pipe := s.rdb.Pipeline()
	reqs := pipe.ZRevRange(ctx, s.keys.NICRequests(nic), 0, -1)
	hos := pipe.ZRevRange(ctx, s.keys.NICHandovers(nic), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, storeErr(err)
	}
	ids := reqs.Val()
	if len(hos.Val()) == 0 {
		return ids, nil
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	pipe = s.rdb.Pipeline()
	items := make([]*redis.StringCmd, 0, len(hos.Val()))
	for _, hid := range hos.Val() {
		if shard, err := handoverRef(hid); err == nil {
			items = append(items, pipe.Get(ctx, s.keys.HandoverItems(shard, hid)))
		}
	}
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	for _, c := range items {
		for _, it := range parseItems(c.Val()) {
			if !seen[it.Request] {
				seen[it.Request] = true
				ids = append(ids, it.Request)
			}
		}
	}
	return ids, nil
}
