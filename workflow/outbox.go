package workflow

import (
	"context"
	"encoding/json"
	"strconv"
)

// Message is one entry of the transactional outbox: an email to send (or,
// for kind "event", a finished request to publish). The workflow writes it
// in the same step as the change that causes it; the mailer renders it
// from the request's state when it sends it.
type Message struct {
	// Kind is an email kind of SPEC section 3 (validation, reminder,
	// resend, recorded, applied, informed, declined, expired, cancelled,
	// failed, not_understood), or undeliverable (to the requester, about
	// the approver named by About), disputed (to the security contact), or
	// event.
	Kind    string `json:"kind"`
	Request string `json:"request,omitempty"`
	// NIC is the contact the email goes to.
	NIC string `json:"nic,omitempty"`
	// About is the approver an undeliverable notice is about.
	About string `json:"about,omitempty"`
	// Event is the status (or "disputed") a kind "event" publishes.
	Event string `json:"event,omitempty"`
	// To, Language, Reason and InReplyTo address a not_understood reply to
	// a sender who may be in no directory.
	To        string `json:"to,omitempty"`
	Language  string `json:"language,omitempty"`
	Reason    string `json:"reason,omitempty"`
	InReplyTo string `json:"in_reply_to,omitempty"`
	// At is when it was queued (ms).
	At int64 `json:"at"`
}

// Enqueue adds a message that no transition writes (such as a reply not
// understood) to the outbox, in the shard of its request or recipient.
func (s *Store) Enqueue(ctx context.Context, m Message) error {
	shard := ShardOf(m.To)
	if sh, ok := shardFromID(m.Request); ok && m.Request != "" {
		shard = sh
	}
	m.At = ms(s.opt.Now())
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	n, err := s.rdb.Incr(ctx, s.keys.OutboxSeq(shard)).Result()
	if err != nil {
		return storeErr(err)
	}
	id := strconv.FormatInt(n, 10)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, s.keys.Outbox(shard), id, body)
	pipe.ZAdd(ctx, s.keys.OutboxReady(shard), redisZ(m.At, id))
	_, err = pipe.Exec(ctx)
	return storeErr(err)
}
