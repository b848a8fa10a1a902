package workflow

import (
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NICs normalises and checks NIC handles against workflow.nic_pattern.
type NICs struct{ re *regexp.Regexp }

// NewNICs compiles the pattern; handles are matched in lower case.
func NewNICs(pattern string) (NICs, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return NICs{}, Errorf(EInvalidRequest, "workflow.nic_pattern: %v", err)
	}
	return NICs{re: re}, nil
}

// Normalize lower-cases and trims nic and checks it against the pattern.
func (n NICs) Normalize(nic string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(nic))
	if v == "" || len(v) > 64 || !n.re.MatchString(v) {
		return v, Errorf(EInvalidNIC, "%q is not a valid NIC handle", clip(nic))
	}
	return v, nil
}

// ValidServiceID reports whether id can name a service: 1 to 253 bytes of
// printable UTF-8 without spaces or braces.
func ValidServiceID(id string) bool {
	if id == "" || len(id) > 253 || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == '{' || r == '}' {
			return false
		}
	}
	return true
}

// Ask is what a requester asks for, as received.
type Ask struct {
	Service   string            `json:"service"`
	Requester string            `json:"requester"`
	Changes   map[string]string `json:"changes"`
}

// Plan is a request that passed every rule: who must agree and who will be told.
type Plan struct {
	Service   Service
	Requester string
	Changes   map[Role]Change
	Approvers []string
	Informed  []string
	// PaymentNICs are the contacts whose payments must be up to date when
	// the change is applied (the current and new billing contacts).
	PaymentNICs []string
}

// checkShape runs the checks that need nothing but the ask itself
// (invalid_request, then invalid_nic) and returns the normalised ask.
func (n NICs) checkShape(a Ask) (string, map[Role]string, error) {
	if strings.TrimSpace(a.Service) == "" {
		return "", nil, Errorf(EInvalidRequest, "service is missing")
	}
	if !ValidServiceID(a.Service) {
		return "", nil, Errorf(EInvalidRequest, "service %q is not a valid service id", clip(a.Service))
	}
	if strings.TrimSpace(a.Requester) == "" {
		return "", nil, Errorf(EInvalidRequest, "requester is missing")
	}
	if len(a.Changes) == 0 {
		return "", nil, Errorf(EInvalidRequest, "changes is empty: name at least one of admin, tech, billing")
	}
	for role, nic := range a.Changes {
		if _, ok := ParseRole(role); !ok {
			return "", nil, Errorf(EInvalidRequest, "unknown role %q: use admin, tech or billing", clip(role))
		}
		if strings.TrimSpace(nic) == "" {
			return "", nil, Errorf(EInvalidRequest, "changes.%s: the new NIC is missing", role)
		}
	}
	requester, err := n.Normalize(a.Requester)
	if err != nil {
		return "", nil, err
	}
	changes := make(map[Role]string, len(a.Changes))
	for _, r := range Roles {
		nic, ok := a.Changes[string(r)]
		if !ok {
			continue
		}
		if changes[r], err = n.Normalize(nic); err != nil {
			return "", nil, err
		}
	}
	return requester, changes, nil
}

// allowedRoles lists the roles a requester holding held may change
// (SPEC section 2): an admin may change every role; otherwise a contact may
// change only the roles it holds among tech and billing.
func allowedRoles(held []Role) map[Role]bool {
	ok := map[Role]bool{}
	for _, r := range held {
		if r == Admin {
			return map[Role]bool{Admin: true, Tech: true, Billing: true}
		}
		ok[r] = true
	}
	return ok
}

// decide applies the rules of SPEC section 2 after the shape checks.
// contacts holds the directory's entries for every NIC involved (missing
// ones are unknown); svc is nil for an unknown service.
func decide(requester string, changes map[Role]string, svc *Service, contacts map[string]*Contact) (*Plan, error) {
	if svc == nil {
		return nil, Errorf(EUnknownService, "no service with this id")
	}
	if contacts[requester] == nil {
		return nil, Errorf(EUnknownContact, "requester %s is not in the directory", requester)
	}
	for _, r := range Roles {
		if nic, ok := changes[r]; ok && contacts[nic] == nil {
			return nil, Errorf(EUnknownContact, "%s is not in the directory", nic)
		}
	}
	held := svc.RolesOf(requester)
	if len(held) == 0 {
		return nil, Errorf(ENotAContact, "%s holds no role on %s", requester, svc.ID)
	}
	allowed := allowedRoles(held)
	for _, r := range Roles {
		if _, ok := changes[r]; ok && !allowed[r] {
			return nil, Errorf(ERoleNotAllowed, "%s (%s) may not change the %s contact of %s",
				requester, joinRoles(held), r, svc.ID)
		}
	}
	p := &Plan{Service: *svc, Requester: requester, Changes: map[Role]Change{}}
	for _, r := range Roles {
		if to, ok := changes[r]; ok {
			if svc.Holder(r) == to {
				return nil, Errorf(ENoChange, "%s is already the %s contact of %s", to, r, svc.ID)
			}
			p.Changes[r] = Change{From: svc.Holder(r), To: to}
		}
	}
	if c, ok := p.Changes[Billing]; ok {
		for _, nic := range []string{c.From, c.To} {
			if k := contacts[nic]; k != nil && !k.PaymentOK {
				return nil, Errorf(EPaymentOverdue, "billing contact %s is not up to date with payments", nic)
			}
		}
		p.PaymentNICs = []string{c.From, c.To}
	}
	p.Approvers = []string{requester}
	for _, r := range Roles {
		if c, ok := p.Changes[r]; ok && !contains(p.Approvers, c.To) {
			p.Approvers = append(p.Approvers, c.To)
		}
	}
	for _, r := range Roles {
		if c, ok := p.Changes[r]; ok && c.From != "" && !contains(p.Approvers, c.From) && !contains(p.Informed, c.From) {
			p.Informed = append(p.Informed, c.From)
		}
	}
	sortStrings(p.Approvers)
	sortStrings(p.Informed)
	return p, nil
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortStrings(s []string) { sort.Strings(s) }

// clip shortens untrusted text quoted back in an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
