package mailer

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"contactd/templates"
	"contactd/workflow"

	gomail "github.com/wneessen/go-mail"
)

// errNotDue marks an email that must not be sent any more (its request
// left pending, its approver answered, its request is gone): the entry is
// done without sending.
var errNotDue = errors.New("mailer: email no longer due")

// letter is one email ready to send: who it goes to, what it says, and
// the token it carries (never logged).
type letter struct {
	kind      workflow.Kind
	to        string // address
	toName    string
	nic       string
	data      templates.Data
	token     string
	request   string
	inReplTo  string // Message-ID a not_understood answers, if any
	msg       *gomail.Msg
	messageID string
}

// batch is what one claimed batch's emails show, read once for all of
// them: the requests and every contact they name.
type batch struct {
	requests  map[string]*workflow.Request
	handovers map[string]*workflow.Handover
	contacts  map[string]*workflow.Contact
}

// prepare turns a claimed batch of one shard into jobs: it reads the
// requests and contacts the emails show (one round trip each for the
// whole batch), issues the tokens they carry (one script) and writes the
// emails. A job whose preparation failed carries the error.
func (m *Mailer) prepare(ctx context.Context, shard int, entries []*workflow.OutboxEntry) []*job {
	until := time.Now().Add(m.p.Lease).UnixNano()
	jobs := make([]*job, len(entries))
	group := &claimGroup{size: len(entries)}
	for i, e := range entries {
		jobs[i] = &job{e: e, group: group}
		jobs[i].leaseEnd.Store(until)
		e.Attempts++
	}
	m.inflight.add(jobs...)
	defer func() {
		if r := recover(); r != nil {
			m.met.Panics.WithLabelValues("mailer").Inc()
			m.log.Error("panic while preparing outbox entries; their emails are given up", "entries", len(jobs),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			for _, j := range jobs {
				if j.err == nil && len(j.mails) == 0 && !j.unsent && !notEmail(j.e.Kind()) {
					j.err = permanent(fmt.Errorf("mailer: panic: %v", r))
				}
			}
		}
	}()
	var mails []*job
	for _, j := range jobs {
		switch {
		case j.e.Unreadable:
			j.err = permanent(errors.New(j.e.LastError))
		case notEmail(j.e.Kind()):
		case m.relay.Down():
			j.err = errRelayDown
		default:
			mails = append(mails, j)
		}
	}
	if len(mails) == 0 {
		return jobs
	}
	b, err := m.read(ctx, mails)
	if err == nil {
		err = m.issueTokens(ctx, shard, mails, b)
	}
	if err != nil {
		m.redis.Fail(err)
		for _, j := range mails {
			j.unsent = true
		}
		return jobs
	}
	for _, j := range mails {
		if j.err == nil && !j.lost.Load() {
			m.safely(j, func() { j.mails, j.err = m.write(j, b) })
		}
	}
	return jobs
}

// notEmail reports whether entries of kind send no email: events to
// publish and hand-over jobs.
func notEmail(k workflow.Kind) bool { return k == workflow.KindEvent || k == workflow.KindJob }

// read gathers what the jobs' emails show: their requests, from the
// snapshot each entry carries (or read, for an entry without one), their
// hand-overs with their items, and every contact they name, read in one
// round trip.
func (m *Mailer) read(ctx context.Context, jobs []*job) (*batch, error) {
	reqs := map[string]*workflow.Request{}
	var ids, hos []string
	for _, j := range jobs {
		if j.e.Handover != "" {
			hos = append(hos, j.e.Handover)
			continue
		}
		if j.e.Request == "" {
			continue
		}
		m.safely(j, func() {
			if r := m.store.Snapshot(&j.e.Message); r != nil {
				reqs[j.e.Request] = r
			} else {
				ids = append(ids, j.e.Request)
			}
		})
	}
	if len(ids) > 0 {
		read, err := m.store.ReadRequests(ctx, ids)
		if err != nil {
			return nil, err
		}
		for id, r := range read {
			reqs[id] = r
		}
	}
	handovers := map[string]*workflow.Handover{}
	if len(hos) > 0 {
		var err error
		if handovers, err = m.store.ReadHandovers(ctx, hos); err != nil {
			return nil, err
		}
	}
	var nics []string
	for _, j := range jobs {
		if j.err != nil {
			continue
		}
		nics = append(nics, j.e.NIC, j.e.About)
		if h := handovers[j.e.Handover]; h != nil {
			nics = append(nics, handoverNICs(h, j.e)...)
		}
		if r := reqs[j.e.Request]; r != nil {
			nics = append(nics, r.Requester)
			nics = append(nics, r.Approvers()...)
			for _, c := range r.Changes {
				nics = append(nics, c.From, c.To)
			}
		}
	}
	contacts, err := m.store.ReadContacts(ctx, nics)
	if err != nil {
		return nil, err
	}
	return &batch{requests: reqs, handovers: handovers, contacts: contacts}, nil
}

// issueTokens issues, in one script, the tokens the jobs' next emails
// carry: an approver's token for validation, reminder and resend emails,
// a "this wasn't me" token for informed ones. A job whose email is no
// longer due gets errNotDue; one whose claim was lost is marked lost.
func (m *Mailer) issueTokens(ctx context.Context, shard int, jobs []*job, b *batch) error {
	var asks []*workflow.TokenAsk
	var owners []*job
	for _, j := range jobs {
		kind := j.e.Kind()
		if j.err != nil || (!kind.CarriesToken() && kind != workflow.KindInformed) {
			continue
		}
		svc := ""
		if j.e.Handover != "" {
			if b.handovers[j.e.Handover] == nil {
				j.err = errNotDue
				continue
			}
		} else if r := b.requests[j.e.Request]; r != nil {
			svc = r.Service
		} else {
			j.err = errNotDue
			continue
		}
		asks = append(asks, &workflow.TokenAsk{Entry: j.e, Report: kind == workflow.KindInformed, Service: svc})
		owners = append(owners, j)
	}
	if err := m.store.IssueTokens(ctx, shard, asks); err != nil {
		return err
	}
	for i, a := range asks {
		switch a.Status {
		case "lost":
			owners[i].lost.Store(true)
		case "gone":
			owners[i].err = errNotDue
		}
	}
	tokens := map[*workflow.OutboxEntry]string{}
	for _, a := range asks {
		if a.Token != "" {
			tokens[a.Entry] = a.Token
		}
	}
	for _, j := range jobs {
		if t, ok := tokens[j.e]; ok {
			j.token = t
		}
	}
	return nil
}

// write writes the job's emails still to send.
func (m *Mailer) write(j *job, b *batch) ([]*letter, error) {
	var out []*letter
	for _, kind := range j.e.Kinds[j.e.Sent:] {
		l, err := m.compose(j, kind, b)
		if err != nil {
			return nil, err
		}
		if err := m.render(l, j.e); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// render renders a letter's templates and writes its message.
func (m *Mailer) render(l *letter, e *workflow.OutboxEntry) error {
	rendered, err := m.set.Render(l.data)
	if err != nil {
		return permanent(err)
	}
	msg, id, err := m.buildMsg(l, e, rendered)
	if err != nil {
		return err
	}
	l.msg, l.messageID = msg, id
	return nil
}

// compose gathers what one email of the job shows, from its request's
// state and the directory as read for the batch.
func (m *Mailer) compose(j *job, kind workflow.Kind, b *batch) (*letter, error) {
	e := j.e
	switch kind {
	case workflow.KindNotUnderstood:
		return m.composeNotUnderstood(e)
	case workflow.KindDisputed:
		if m.cfg.Workflow.SecurityContact == "" {
			m.log.Warn("dispute email not sent: workflow.security_contact is not set", "request_id", e.Request, "outbox_id", e.Ref())
			return nil, errNotDue
		}
	}
	if e.Handover != "" {
		return m.composeHandover(j, kind, b)
	}
	req := b.requests[e.Request]
	if req == nil {
		return nil, errNotDue
	}
	people := directory{contacts: b.contacts}
	l := &letter{kind: kind, nic: e.NIC, request: req.ID}
	d := templates.Data{Kind: kind, RequestID: req.ID, Service: req.Service, Requester: people.get(req.Requester),
		Status: string(req.Status), CreatedAt: req.CreatedAt, ExpiresAt: req.ExpiresAt, Reason: req.Why.String(),
		ReplyAddress: m.cfg.IMAP.ReplyAddress, ServiceKind: req.ServiceKind}
	for _, r := range workflow.Roles {
		if c, ok := req.Changes[r]; ok {
			d.Changes = append(d.Changes, templates.Change{Role: string(r), From: people.get(c.From), To: people.get(c.To)})
		}
	}
	return m.address(l, d, j, kind, b, people, req.Approvers(), req.Approvals)
}

// attachToken shows the token and link of the kinds that carry one.
func (m *Mailer) attachToken(l *letter, d *templates.Data, j *job, kind workflow.Kind) {
	base := strings.TrimRight(m.cfg.HTTP.BaseURL, "/")
	switch {
	case kind.CarriesToken() && j.token != "":
		l.token, d.Token, d.Link = j.token, j.token, base+"/v/"+j.token
	case kind == workflow.KindInformed && j.token != "":
		l.token, d.Token, d.Link = j.token, j.token, base+"/r/"+j.token
		d.LinkUntil = m.now().Add(m.cfg.Workflow.ReportWindow.D())
	}
}

func (m *Mailer) composeNotUnderstood(e *workflow.OutboxEntry) (*letter, error) {
	if strings.TrimSpace(e.To) == "" {
		return nil, permanent(errors.New("mailer: reply-not-understood entry without an address"))
	}
	d := templates.Data{Kind: workflow.KindNotUnderstood, Language: m.language(e.Language), Reason: e.Reason,
		ReplyAddress: m.cfg.IMAP.ReplyAddress, RequestID: e.Request}
	return &letter{kind: workflow.KindNotUnderstood, to: e.To, data: d, request: e.Request, inReplTo: e.InReplyTo}, nil
}

// language is lang when it is one of ours, else workflow.default_language.
func (m *Mailer) language(lang string) workflow.Language {
	return workflow.Language(lang).Or(workflow.Language(m.cfg.Workflow.DefaultLanguage).Or(workflow.English))
}

// directory holds the contacts an email names, read once each.
type directory struct {
	contacts map[string]*workflow.Contact
}

func (d directory) get(nic string) templates.Person {
	if nic == "" {
		return templates.Person{}
	}
	p := templates.Person{NIC: nic}
	if c := d.contacts[nic]; c != nil {
		p.Name = c.Name
	}
	return p
}

// handoverNICs lists the contacts a hand-over's email to e.NIC names: the
// requester, the approvers, and the holders of the services it lists.
func handoverNICs(h *workflow.Handover, e *workflow.OutboxEntry) []string {
	nics := append([]string{h.Requester}, h.Approvers()...)
	for _, to := range h.Changes {
		nics = append(nics, to)
	}
	items := handoverItems(h, e.Kinds[len(e.Kinds)-1], e)
	for i, it := range items {
		if i == templates.MaxItems {
			break
		}
		for _, from := range it.From {
			nics = append(nics, from)
		}
	}
	return nics
}

// handoverItems are the services a hand-over's email of kind to e.NIC
// lists: those applied (applied), those that failed (failed), those the
// recipient held and that were applied (informed), those the reporter
// held (disputed), else all.
func handoverItems(h *workflow.Handover, kind workflow.Kind, e *workflow.OutboxEntry) []workflow.HandoverItem {
	keep := func(f func(workflow.HandoverItem) bool) []workflow.HandoverItem {
		var out []workflow.HandoverItem
		for _, it := range h.Items {
			if f(it) {
				out = append(out, it)
			}
		}
		return out
	}
	held := func(it workflow.HandoverItem, nic string) bool {
		for _, from := range it.From {
			if from == nic {
				return true
			}
		}
		return false
	}
	status := func(it workflow.HandoverItem) workflow.Status { return h.Outcomes[it.Request].Status }
	switch kind {
	case workflow.KindApplied:
		return keep(func(it workflow.HandoverItem) bool { return status(it) == workflow.Applied })
	case workflow.KindFailed:
		return keep(func(it workflow.HandoverItem) bool { return status(it) == workflow.Failed })
	case workflow.KindInformed:
		return keep(func(it workflow.HandoverItem) bool { return status(it) == workflow.Applied && held(it, e.NIC) })
	case workflow.KindDisputed:
		return keep(func(it workflow.HandoverItem) bool { return held(it, e.NIC) })
	}
	return h.Items
}

// composeHandover gathers what one email of a hand-over shows: the
// hand-over, and the services it lists (the first templates.MaxItems,
// the others counted).
func (m *Mailer) composeHandover(j *job, kind workflow.Kind, b *batch) (*letter, error) {
	e := j.e
	h := b.handovers[e.Handover]
	if h == nil {
		return nil, errNotDue
	}
	people := directory{contacts: b.contacts}
	l := &letter{kind: kind, nic: e.NIC, request: h.ID}
	d := templates.Data{Kind: kind, Handover: h.ID, Requester: people.get(h.Requester), Status: h.State,
		CreatedAt: h.CreatedAt, ExpiresAt: h.ExpiresAt, ReplyAddress: m.cfg.IMAP.ReplyAddress}
	items := handoverItems(h, kind, e)
	for i, it := range items {
		if i == templates.MaxItems {
			d.More = len(items) - i
			break
		}
		ti := templates.Item{Service: it.Service, ServiceKind: it.Kind, Reason: h.Outcomes[it.Request].Why.String()}
		for _, r := range workflow.Roles {
			if to, ok := h.Changes[r]; ok {
				ti.Changes = append(ti.Changes, templates.Change{Role: string(r), From: people.get(it.From[r]), To: people.get(to)})
			}
		}
		d.Items = append(d.Items, ti)
	}
	return m.address(l, d, j, kind, b, people, h.Approvers(), h.Approvals)
}

// address ends the composition of a request's or a hand-over's email: who
// is still awaited and who declined, then the recipient (the security
// contact for a dispute), their language and answer, and the token.
func (m *Mailer) address(l *letter, d templates.Data, j *job, kind workflow.Kind, b *batch, people directory,
	approvers []string, approvals map[string]workflow.Approval) (*letter, error) {
	e := j.e
	for _, nic := range approvers {
		switch approvals[nic].Status {
		case workflow.ApprovalPending:
			d.Awaited = append(d.Awaited, people.get(nic))
		case workflow.ApprovalDeclined:
			d.Decliners = append(d.Decliners, people.get(nic))
		}
	}
	if kind == workflow.KindDisputed {
		d.About = people.get(e.NIC)
		d.Language = m.language("")
		l.to, l.nic = m.cfg.Workflow.SecurityContact, ""
		l.data = d
		return l, nil
	}
	c := b.contacts[e.NIC]
	if c == nil || strings.TrimSpace(c.Email) == "" {
		return nil, permanent(fmt.Errorf("mailer: contact %s has no email address", e.NIC))
	}
	l.to, l.toName = c.Email, c.Name
	d.Recipient, d.Language = people.get(e.NIC), m.language(c.Language)
	d.Answer = string(approvals[e.NIC].Status)
	d.About = people.get(e.About)
	m.attachToken(l, &d, j, kind)
	l.data = d
	return l, nil
}
