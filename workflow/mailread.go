package workflow

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Snapshot is the request an outbox entry's snapshot shows (Message.Snap),
// without its history, or nil when the entry carries none.
func (s *Store) Snapshot(m *Message) *Request {
	if m.Snap == nil || m.Request == "" {
		return nil
	}
	r, err := s.decodeRequest(m.Request, m.Snap)
	if err != nil {
		return nil
	}
	r.ServiceKind = m.Snap["k"]
	return r
}

// EventRequest is the request an event entry publishes, as the API shows
// it: from the entry's snapshot and the request's history (one read), or
// read whole for an entry without a snapshot.
func (s *Store) EventRequest(ctx context.Context, m *Message) (*Request, error) {
	r := s.Snapshot(m)
	if r == nil {
		return s.Get(ctx, m.Request)
	}
	shard, _ := shardFromID(r.ID)
	hist, err := s.rdb.Get(ctx, s.keys.History(shard, r.ID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, storeErr(err)
	}
	r.History = decodeHistory(m.Snap["h"] + hist)
	return r, s.withHandovers(ctx, []*Request{r})
}

// ReadRequests reads the requests named, without their history, in one
// round trip (two for requests made before their service's kind was kept
// with them). Requests that do not exist are absent from the map.
func (s *Store) ReadRequests(ctx context.Context, ids []string) (map[string]*Request, error) {
	out := map[string]*Request{}
	pipe := s.rdb.Pipeline()
	cmds := map[string]*redis.MapStringStringCmd{}
	for _, id := range ids {
		if _, seen := cmds[id]; seen {
			continue
		}
		if _, key, err := s.requestRef(id); err == nil {
			cmds[id] = pipe.HGetAll(ctx, key)
		}
	}
	if len(cmds) == 0 {
		return out, nil
	}
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	var noKind []*Request
	for id, c := range cmds {
		h := c.Val()
		if len(h) == 0 {
			continue
		}
		r, err := s.decodeRequest(id, h)
		if err != nil {
			return nil, err
		}
		r.ServiceKind = h["k"]
		if _, ok := h["k"]; !ok {
			noKind = append(noKind, r)
		}
		out[id] = r
	}
	if len(noKind) > 0 {
		pipe := s.rdb.Pipeline()
		kinds := make([]*redis.StringCmd, len(noKind))
		for i, r := range noKind {
			kinds[i] = pipe.HGet(ctx, s.keys.Service(r.Service), "kind")
		}
		if err := execReads(ctx, pipe); err != nil {
			return nil, err
		}
		for i, r := range noKind {
			r.ServiceKind = kinds[i].Val()
		}
	}
	return out, nil
}

// ReadContacts reads the contacts named in one round trip. Contacts
// missing from the directory (or whose NIC is not valid) are absent from
// the map.
func (s *Store) ReadContacts(ctx context.Context, nics []string) (map[string]*Contact, error) {
	out := map[string]*Contact{}
	pipe := s.rdb.Pipeline()
	cmds := map[string]*redis.MapStringStringCmd{}
	for _, nic := range nics {
		n, err := s.nics.Normalize(nic)
		if err != nil {
			continue
		}
		if _, seen := cmds[n]; !seen {
			cmds[n] = pipe.HGetAll(ctx, s.keys.Contact(n))
		}
	}
	if len(cmds) == 0 {
		return out, nil
	}
	if err := execReads(ctx, pipe); err != nil {
		return nil, err
	}
	for nic, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out[nic] = decodeContact(nic, h)
		}
	}
	return out, nil
}

// ReadHandovers reads the hand-overs named, with their items, refusals and
// outcomes, for the emails a hand-over sends. Hand-overs that do not exist
// are absent from the map.
func (s *Store) ReadHandovers(ctx context.Context, ids []string) (map[string]*Handover, error) {
	out := map[string]*Handover{}
	for _, id := range ids {
		if _, seen := out[id]; seen {
			continue
		}
		h, err := s.readHandover(ctx, id)
		if ErrorCode(err) == ENotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = h
	}
	return out, nil
}
