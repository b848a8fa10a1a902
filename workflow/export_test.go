package workflow

import (
	"context"
	"strings"
)

// StartHandover does what CreateHandover does up to making the requests
// of the first n services planned, then stops, as a daemon killed there
// would: the hand-over is left being created, for the sweep to finish.
func (s *Store) StartHandover(ctx context.Context, a HandoverAsk, n int) (string, error) {
	requester, changes, err := s.nics.checkShape(Ask{Service: "-", Requester: a.Requester, Changes: a.Changes})
	if err != nil {
		return "", err
	}
	hp, err := s.planHandover(ctx, requester, changes, a.Services)
	if err != nil {
		return "", err
	}
	id := newRequestID(int(randomShard()))
	shard, _ := shardFromID(id)
	now := s.opt.Now()
	expires := now.Add(s.opt.RequestTTL)
	var planned strings.Builder
	items := make([]HandoverItem, len(hp.plans))
	for i, p := range hp.plans {
		items[i] = itemOf(newRequestID(ShardOf(p.Service.ID)), p)
		planned.WriteString(items[i].line())
	}
	chg := `{"tech":"` + changes[Tech] + `"}`
	if _, err := s.runHandover(ctx, hoCreateScript, shard, id, nil, requester, chg, strings.Join(hp.plans[0].Approvers, " "),
		ms(expires), string(API), planned.String(), refusalText(hp.refused), ms(now.Add(handoverRepairAfter))); err != nil {
		return "", err
	}
	var made []HandoverItem
	var refused []Refusal
	if _, err := s.makeBatches(ctx, id, hp.plans[:n], items[:n], expires, API, &made, &refused); err != nil {
		return "", err
	}
	return id, nil
}

// IndexedServices exposes the unchecked pointers of the NIC index to the
// tests of the directory.
func (s *Store) IndexedServices(ctx context.Context, nic string) ([]string, error) {
	return s.indexedServices(ctx, nic)
}

// IndexedNICs exposes the unchecked pointers of the email index.
func (s *Store) IndexedNICs(ctx context.Context, address string) ([]string, error) {
	return s.indexedNICs(ctx, address)
}

// IndexSlot exposes where a NIC or an address falls in an index.
var IndexSlot = indexSlot
