package web

import (
	"context"
	"sync"

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

// parties reads the request's contacts and service in parallel, so a page
// waits about one round trip to Redis for them rather than one per record.
func (s *Server) parties(ctx context.Context, req *workflow.Request) parties {
	nics := map[string]bool{req.Requester: true}
	for _, c := range req.Changes {
		nics[c.From], nics[c.To] = true, true
	}
	for nic := range req.Approvals {
		nics[nic] = true
	}
	delete(nics, "")
	p := parties{contacts: map[string]*workflow.Contact{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for nic := range nics {
		wg.Go(func() {
			if c, err := s.p.Store.GetContact(ctx, nic); err == nil {
				mu.Lock()
				p.contacts[nic] = c
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		if svc, err := s.p.Store.GetService(ctx, req.Service); err == nil {
			p.service = svc
		}
	})
	wg.Wait()
	return p
}
