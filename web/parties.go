package web

import (
	"context"

	"contactd/workflow"
)

// parties is what the directory says about everyone a request mentions
// and about its service. A record that cannot be read is left out: the
// page then shows the bare NIC or id.
type parties struct {
	contacts map[string]*workflow.Contact
	service  *workflow.Service
}

// of writes a contact as "Name (nic)", or the NIC alone when unnamed.
func (p parties) of(nic string) string {
	if c := p.contacts[nic]; c != nil && c.Name != "" {
		return c.Name + " (" + nic + ")"
	}
	return nic
}

// parties reads the request's contacts and service in one round trip.
func (s *Server) parties(ctx context.Context, req *workflow.Request) parties {
	svc, contacts, err := s.p.Store.Parties(ctx, req)
	if err != nil {
		return parties{contacts: map[string]*workflow.Contact{}}
	}
	return parties{contacts: contacts, service: svc}
}
