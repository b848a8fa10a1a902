package mailer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"contactd/templates"
	"contactd/workflow"
)

// errNotDue marks an email that must not be sent any more (its request
// left pending, its approver answered, its request is gone): the entry is
// done without sending.
var errNotDue = errors.New("mailer: email no longer due")

// letter is an email ready to be written: who it goes to, what it says,
// and the token it carries (never logged).
type letter struct {
	to       string // address
	toName   string
	nic      string
	data     templates.Data
	token    string
	request  string
	inReplTo string // Message-ID a not_understood answers, if any
}

// compose gathers what the email of e shows, from the request's current
// state and the directory. Approvers' tokens are issued here, just before
// sending, so that a token exists only once its email is on its way.
func (m *Mailer) compose(ctx context.Context, e *workflow.OutboxEntry) (*letter, error) {
	switch e.Kind {
	case workflow.KindNotUnderstood:
		return m.composeNotUnderstood(ctx, e)
	case workflow.KindDisputed:
		if m.cfg.Workflow.SecurityContact == "" {
			m.log.Warn("dispute email not sent: workflow.security_contact is not set", "request_id", e.Request, "outbox_id", e.Ref())
			return nil, errNotDue
		}
	}
	req, err := m.store.Get(ctx, e.Request)
	if workflow.ErrorCode(err) == workflow.ENotFound {
		return nil, errNotDue
	}
	if err != nil {
		return nil, err
	}
	people, serviceKind, err := m.people(ctx, req, e)
	if err != nil {
		return nil, err
	}
	l := &letter{nic: e.NIC, request: req.ID}
	d := templates.Data{Kind: e.Kind, RequestID: req.ID, Service: req.Service, Requester: people.get(req.Requester),
		Status: string(req.Status), CreatedAt: req.CreatedAt, ExpiresAt: req.ExpiresAt, Reason: req.Reason,
		ReplyAddress: m.cfg.IMAP.ReplyAddress}
	d.ServiceKind = serviceKind
	for _, r := range workflow.Roles {
		if c, ok := req.Changes[r]; ok {
			d.Changes = append(d.Changes, templates.Change{Role: string(r), From: people.get(c.From), To: people.get(c.To)})
		}
	}
	for _, nic := range req.Approvers() {
		switch req.Approvals[nic].Status {
		case workflow.ApprovalPending:
			d.Awaited = append(d.Awaited, people.get(nic))
		case workflow.ApprovalDeclined:
			d.Decliners = append(d.Decliners, people.get(nic))
		}
	}
	if e.Kind == workflow.KindDisputed {
		d.About = people.get(e.NIC)
		d.Language = m.language("")
		l.to, l.nic = m.cfg.Workflow.SecurityContact, ""
		l.data = d
		return l, nil
	}
	c := people.contacts[e.NIC]
	if c == nil || strings.TrimSpace(c.Email) == "" {
		return nil, permanent(fmt.Errorf("mailer: contact %s has no email address", e.NIC))
	}
	l.to, l.toName = c.Email, c.Name
	d.Recipient, d.Language = people.get(e.NIC), m.language(c.Language)
	d.Answer = req.Approvals[e.NIC].Status
	d.About = people.get(e.About)
	if err := m.attachToken(ctx, l, &d, req, e); err != nil {
		return nil, err
	}
	l.data = d
	return l, nil
}

// attachToken issues the token and link of the kinds that carry one.
func (m *Mailer) attachToken(ctx context.Context, l *letter, d *templates.Data, req *workflow.Request, e *workflow.OutboxEntry) error {
	base := strings.TrimRight(m.cfg.HTTP.BaseURL, "/")
	switch {
	case e.Kind.CarriesToken():
		tok, hash, err := m.store.IssueToken(ctx, req.ID, e.NIC, e.Kind)
		switch workflow.ErrorCode(err) {
		case "":
		case workflow.EGone, workflow.ENotFound:
			return errNotDue
		default:
			return err
		}
		e.TokenHash = hash
		l.token, d.Token, d.Link = tok, tok, base+"/v/"+tok
	case e.Kind == workflow.KindInformed:
		tok, err := m.store.IssueReportToken(ctx, req.ID, e.NIC)
		if workflow.ErrorCode(err) == workflow.ENotFound {
			return errNotDue
		}
		if err != nil {
			return err
		}
		l.token, d.Token, d.Link = tok, tok, base+"/r/"+tok
		d.LinkUntil = m.now().Add(m.cfg.Workflow.ReportWindow.D())
	}
	return nil
}

func (m *Mailer) composeNotUnderstood(ctx context.Context, e *workflow.OutboxEntry) (*letter, error) {
	if strings.TrimSpace(e.To) == "" {
		return nil, permanent(errors.New("mailer: reply-not-understood entry without an address"))
	}
	d := templates.Data{Kind: e.Kind, Language: m.language(e.Language), Reason: e.Reason,
		ReplyAddress: m.cfg.IMAP.ReplyAddress, RequestID: e.Request}
	return &letter{to: e.To, data: d, request: e.Request, inReplTo: e.InReplyTo}, nil
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

// people reads, in one round trip, every contact the request and the
// entry name, and the service's kind. A contact missing from the
// directory is shown by its NIC alone.
func (m *Mailer) people(ctx context.Context, req *workflow.Request, e *workflow.OutboxEntry) (directory, string, error) {
	svc, contacts, err := m.store.Parties(ctx, req, e.NIC, e.About)
	if err != nil {
		return directory{}, "", fmt.Errorf("mailer: reading the directory: %w", err)
	}
	kind := ""
	if svc != nil {
		kind = svc.Kind
	}
	return directory{contacts: contacts}, kind, nil
}
