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

// Preview returns the email of kind in lang about a made-up request
// (templates.Sample) exactly as the mailer writes it for the relay: every
// header, both parts, and the DKIM signature when smtp.dkim is set. An
// operator reads it to check templates, branding and signing before
// anything is sent.
func Preview(cfg config.Config, set *templates.Set, kind workflow.Kind, lang string, now time.Time) ([]byte, error) {
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
	data := templates.Sample(string(kind), lang, strings.TrimRight(cfg.HTTP.BaseURL, "/"))
	data.ReplyAddress = cfg.IMAP.ReplyAddress
	rendered, err := set.Render(data)
	if err != nil {
		return nil, err
	}
	to, name := sampleAddress(data), data.Recipient.Name
	if kind == workflow.KindDisputed && cfg.Workflow.SecurityContact != "" {
		to = cfg.Workflow.SecurityContact
	}
	l := &letter{kind: kind, to: to, toName: name, nic: data.Recipient.NIC, data: data, token: data.Token, request: data.RequestID}
	e := &workflow.OutboxEntry{Message: workflow.Message{Kinds: []workflow.Kind{kind}, Request: data.RequestID, NIC: data.Recipient.NIC,
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
