package mailer

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"contactd/config"
	"contactd/templates"
	"contactd/workflow"
)

// Preview returns the email of a made-up request or hand-over (data, from
// templates.Sample or templates.SampleHandover, its links starting with
// http.base_url) exactly as the mailer writes it for the relay: every
// header, both parts, and the DKIM signature when smtp.dkim is set. An
// operator reads it to check templates, branding and signing before
// anything is sent.
func Preview(cfg config.Config, set *templates.Set, data templates.Data, now time.Time) ([]byte, error) {
	if set == nil {
		return nil, errors.New("mailer: no templates")
	}
	from, err := mail.ParseAddress(cfg.SMTP.From)
	if err != nil {
		return nil, fmt.Errorf("mailer: smtp.from: %w", err)
	}
	signer, err := loadDKIM(cfg.SMTP.DKIM)
	if err != nil {
		return nil, err
	}
	m := &Mailer{cfg: cfg, set: set, from: from, domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		dkim: signer, p: Params{Now: func() time.Time { return now }}}
	kind := data.Kind
	data.ReplyAddress = cfg.IMAP.ReplyAddress
	rendered, err := set.Render(data)
	if err != nil {
		return nil, err
	}
	to, name := sampleAddress(data), data.Recipient.Name
	if kind == workflow.KindDisputed && cfg.Workflow.SecurityContact != "" {
		to = cfg.Workflow.SecurityContact
	}
	request := data.RequestID
	if request == "" {
		request = data.Handover
	}
	l := &letter{kind: kind, to: to, toName: name, nic: data.Recipient.NIC, data: data, token: data.Token, request: request}
	e := &workflow.OutboxEntry{Message: workflow.Message{Kinds: []workflow.Kind{kind}, Request: request, NIC: data.Recipient.NIC,
		At: now.UnixMilli()}, ID: "1"}
	if kind.CarriesToken() && data.Token != "" {
		e.TokenRef = workflow.HashToken(data.Token)
	}
	msg, _, err := m.buildMsg(l, e, rendered)
	if err != nil {
		return nil, err
	}
	return newSender(cfg.SMTP, time.Second, signer, nil).write(msg)
}

// sampleAddress is a made-up address for the sample's recipient.
func sampleAddress(d templates.Data) string {
	name := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(d.Recipient.Name), " ", "."))
	if name == "" {
		name = "someone"
	}
	return name + "@example.net"
}
