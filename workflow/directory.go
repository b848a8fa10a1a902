package workflow

import (
	"context"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// The fields of a contact's hash (Keys.Contact). payment_ok keeps its long
// name: the apply step reads it by that name.
const (
	fieldEmail     = "e"
	fieldName      = "n"
	fieldLanguage  = "l"
	fieldPaymentOK = "payment_ok"
)

// The names the first three fields had before they were shortened; a
// contact not rewritten since (by a write or `directory reindex`) still
// has them.
var legacyContactFields = map[string]string{fieldEmail: "email", fieldName: "name", fieldLanguage: "language"}

func decodeContact(nic string, h map[string]string) *Contact {
	return &Contact{NIC: nic, Email: contactField(h, fieldEmail), Name: contactField(h, fieldName),
		Language: contactField(h, fieldLanguage), PaymentOK: h[fieldPaymentOK] == "1"}
}

// contactField reads field f of a contact's hash, under its legacy name
// when the hash predates the short one.
func contactField(h map[string]string, f string) string {
	if v, ok := h[f]; ok {
		return v
	}
	return h[legacyContactFields[f]]
}

func decodeService(id string, h map[string]string) *Service {
	return &Service{ID: id, Kind: h["kind"], Admin: h["admin"], Tech: h["tech"], Billing: h["billing"]}
}

func boolField(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// CheckContact normalises a contact and checks every field.
func (s *Store) CheckContact(c Contact) (Contact, error) {
	nic, err := s.nics.Normalize(c.NIC)
	if err != nil {
		return c, err
	}
	c.NIC = nic
	c.Email = strings.TrimSpace(c.Email)
	if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
		return c, Errorf(EInvalidRequest, "contact %s: email %q is not a valid address", nic, clip(c.Email))
	}
	c.Name = strings.TrimSpace(c.Name)
	if !oneLine(c.Name, 200) {
		return c, Errorf(EInvalidRequest, "contact %s: name must be one line of at most 200 bytes of text", nic)
	}
	if c.Language == "" {
		c.Language = s.opt.DefaultLanguage
	}
	lang, ok := ParseLanguage(c.Language)
	if !ok {
		return c, Errorf(EInvalidRequest, "contact %s: language must be one of %s, not %q", nic, LanguageNames(), clip(c.Language))
	}
	c.Language = string(lang)
	return c, nil
}

// oneLine reports whether s is valid UTF-8 of at most max bytes without
// control characters (so no line break either).
func oneLine(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// checkService normalises a service and checks its fields; known tells
// whether a NIC is in the directory. Every NIC is checked for its shape
// before any is looked up, as for a request.
func (s *Store) checkService(v Service, known func(string) bool) (Service, error) {
	v.ID = strings.TrimSpace(v.ID)
	if !ValidServiceID(v.ID) {
		return v, Errorf(EInvalidRequest, "service id %q is not valid", clip(v.ID))
	}
	v.Kind = strings.TrimSpace(v.Kind)
	if !oneLine(v.Kind, 100) {
		return v, Errorf(EInvalidRequest, "service %s: kind must be one line of at most 100 bytes of text", v.ID)
	}
	holders := []*string{&v.Admin, &v.Tech, &v.Billing}
	for i, r := range Roles {
		nic, err := s.nics.Normalize(*holders[i])
		if err != nil {
			return v, &Error{Code: EInvalidNIC, Message: fmt.Sprintf("service %s: %s: %s", v.ID, r, ErrorMessage(err))}
		}
		*holders[i] = nic
	}
	for i, r := range Roles {
		if !known(*holders[i]) {
			return v, Errorf(EUnknownContact, "service %s: %s contact %s is not in the directory", v.ID, r, *holders[i])
		}
	}
	return v, nil
}

// GetContact returns a contact of the directory (EUnknownContact if none).
func (s *Store) GetContact(ctx context.Context, nic string) (*Contact, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.Contact(nic)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if len(h) == 0 {
		return nil, Errorf(EUnknownContact, "%s is not in the directory", nic)
	}
	return decodeContact(nic, h), nil
}

// Parties reads, in one round trip, the service of a request and every
// contact it names (requester, approvers, informed, each change's from and
// to) plus any extra NICs. Contacts missing from the directory are absent
// from the map; a missing service is nil.
func (s *Store) Parties(ctx context.Context, r *Request, extra ...string) (*Service, map[string]*Contact, error) {
	nics := append([]string{r.Requester}, extra...)
	nics = append(nics, r.Informed...)
	for nic := range r.Approvals {
		nics = append(nics, nic)
	}
	for _, c := range r.Changes {
		nics = append(nics, c.From, c.To)
	}
	seen := map[string]bool{}
	var uniq []string
	for _, nic := range nics {
		if n, err := s.nics.Normalize(nic); err == nil && !seen[n] {
			seen[n] = true
			uniq = append(uniq, n)
		}
	}
	svc, contacts, err := s.readDirectory(ctx, r.Service, uniq)
	if err != nil {
		return nil, nil, err
	}
	for nic, c := range contacts {
		if c == nil {
			delete(contacts, nic)
		}
	}
	return svc, contacts, nil
}

// PutContact creates or replaces a contact. The email index loses the
// contact's former address.
func (s *Store) PutContact(ctx context.Context, c Contact) (*Contact, error) {
	c, err := s.CheckContact(c)
	if err != nil {
		return nil, err
	}
	old, err := s.rdb.HMGet(ctx, s.keys.Contact(c.NIC), fieldEmail, legacyContactFields[fieldEmail]).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	pipe := s.rdb.Pipeline()
	s.writeContact(ctx, pipe, c)
	for _, v := range old {
		if was, _ := v.(string); was != "" && !strings.EqualFold(was, c.Email) {
			key, field := emailEntry(s.keys, was, c.NIC)
			pipe.HDel(ctx, key, field)
		}
	}
	_, err = pipe.Exec(ctx)
	return &c, storeErr(err)
}

// writeContact writes the contact's entry in the email index, then the
// contact.
func (s *Store) writeContact(ctx context.Context, pipe redis.Pipeliner, c Contact) {
	key, field := emailEntry(s.keys, c.Email, c.NIC)
	pipe.HSet(ctx, key, field, "")
	pipe.HSet(ctx, s.keys.Contact(c.NIC), fieldEmail, c.Email, fieldName, c.Name, fieldLanguage, c.Language,
		fieldPaymentOK, boolField(c.PaymentOK))
}

// GetService returns a service (EUnknownService if none).
func (s *Store) GetService(ctx context.Context, id string) (*Service, error) {
	if !ValidServiceID(id) {
		return nil, Errorf(EUnknownService, "no service with id %q", clip(id))
	}
	h, err := s.rdb.HGetAll(ctx, s.keys.Service(id)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	if len(h) == 0 {
		return nil, Errorf(EUnknownService, "no service with id %q", id)
	}
	return decodeService(id, h), nil
}

// PutService creates or replaces a service; its three contacts must be in
// the directory.
func (s *Store) PutService(ctx context.Context, v Service) (*Service, error) {
	var unknown error
	v, err := s.checkService(v, func(nic string) bool {
		n, err := s.rdb.Exists(ctx, s.keys.Contact(nic)).Result()
		if err != nil {
			unknown = err
		}
		return n == 1
	})
	if unknown != nil {
		return nil, storeErr(unknown)
	}
	if err != nil {
		return nil, err
	}
	old, err := s.rdb.HGetAll(ctx, s.keys.Service(v.ID)).Result()
	if err != nil {
		return nil, storeErr(err)
	}
	pipe := s.rdb.Pipeline()
	s.writeService(ctx, pipe, v)
	// Former holders lose their "My contacts" pointer; one left behind by
	// a race is harmless, as readers check the service itself.
	for _, r := range Roles {
		if was := old[string(r)]; was != "" && len(v.RolesOf(was)) == 0 {
			key, field := nicEntry(s.keys, was, v.ID)
			pipe.HDel(ctx, key, field)
		}
	}
	_, err = pipe.Exec(ctx)
	return &v, storeErr(err)
}

// writeService writes the "My contacts" pointers first, then the service.
func (s *Store) writeService(ctx context.Context, pipe redis.Pipeliner, v Service) {
	s.pointServices(ctx, pipe, v.ID, v.Admin, v.Tech, v.Billing)
	pipe.HSet(ctx, s.keys.Service(v.ID), "kind", v.Kind, "admin", v.Admin, "tech", v.Tech, "billing", v.Billing)
}

// pointServices adds the "My contacts" pointers from each of nics to the
// service id. Readers check each pointer against the service, so a
// pointer written before a change that then fails is harmless.
func (s *Store) pointServices(ctx context.Context, pipe redis.Pipeliner, id string, nics ...string) {
	for i, nic := range nics {
		if nic == "" || slices.Contains(nics[:i], nic) {
			continue
		}
		key, field := nicEntry(s.keys, nic, id)
		pipe.HSet(ctx, key, field, "")
	}
}

// ContactService is one line of "My contacts": a service and nic's roles on it.
type ContactService struct {
	Service string `json:"service"`
	Kind    string `json:"kind"`
	Roles   []Role `json:"roles"`
}

// ServicesOf lists the services where nic holds a role, by service id.
func (s *Store) ServicesOf(ctx context.Context, nic string) ([]ContactService, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	svcs, err := s.heldServices(ctx, nic)
	if err != nil {
		return nil, err
	}
	out := make([]ContactService, len(svcs))
	for i, v := range svcs {
		out[i] = ContactService{Service: v.ID, Kind: v.Kind, Roles: v.RolesOf(nic)}
	}
	return out, nil
}

// HeldServices returns every service where nic holds a role, as it is
// now, by service id: the pointers of the NIC index, each checked against
// its service in one round trip. Ten thousand services cost two or three
// round trips.
func (s *Store) HeldServices(ctx context.Context, nic string) ([]Service, error) {
	nic, err := s.nics.Normalize(nic)
	if err != nil {
		return nil, err
	}
	return s.heldServices(ctx, nic)
}

func (s *Store) heldServices(ctx context.Context, nic string) ([]Service, error) {
	ids, err := s.indexedServices(ctx, nic)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.keys.Service(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, storeErr(err)
		}
	}
	out := []Service{}
	for i, id := range ids {
		if v := decodeService(id, cmds[i].Val()); len(v.RolesOf(nic)) > 0 {
			out = append(out, *v)
		}
	}
	return out, nil
}

// IsContactAddress reports whether address is the email of a contact of
// the directory.
func (s *Store) IsContactAddress(ctx context.Context, address string) (bool, error) {
	address = strings.TrimSpace(address)
	if address == "" {
		return false, nil
	}
	nics, err := s.indexedNICs(ctx, address)
	if err != nil {
		return false, err
	}
	for _, nic := range nics {
		c, err := s.GetContact(ctx, nic)
		if err != nil && ErrorCode(err) != EUnknownContact && ErrorCode(err) != EInvalidNIC {
			return false, err
		}
		if c != nil && strings.EqualFold(strings.TrimSpace(c.Email), address) {
			return true, nil
		}
	}
	return false, nil
}

// The directory's indexes (Keys.EmailIndex, Keys.NICIndex) are bucketed
// hashes: an address or a NIC hashes (FNV-1a, 64 bits) to one of
// IndexBuckets buckets and to a three-character tag, and each pointer is
// a field TAG+TARGET with an empty value. A bucket holds some tens of
// such fields, so Redis keeps it in its compact listpack encoding and a
// pointer costs its own bytes plus two or three, where a key of its own
// costs about a hundred. Listing the pointers of one address or NIC is an
// HSCAN of its bucket matching its tag; a pointer of another address or
// NIC with the same bucket and tag (one chance in 2^33 per pair) is
// weeded out with the stale ones, since readers check every pointer
// against the record it names.

// tagAlphabet writes a tag: 64 characters, none special to HSCAN's MATCH.
const tagAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// indexSlot returns the bucket and tag of s (a lower-case address or a NIC).
func indexSlot(s string) (int, string) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	t := h / IndexBuckets
	tag := [3]byte{tagAlphabet[t&63], tagAlphabet[t>>6&63], tagAlphabet[t>>12&63]}
	return int(h % IndexBuckets), string(tag[:])
}

// emailEntry returns the bucket and field of the pointer from address to nic.
func emailEntry(k Keys, address, nic string) (string, string) {
	n, tag := indexSlot(strings.ToLower(address))
	return k.EmailIndex(n), tag + nic
}

// nicEntry returns the bucket and field of the pointer from nic to service id.
func nicEntry(k Keys, nic, id string) (string, string) {
	n, tag := indexSlot(nic)
	return k.NICIndex(n), tag + id
}

// indexedNICs returns the NICs the email index points to from address,
// unchecked, with those of the legacy index.
func (s *Store) indexedNICs(ctx context.Context, address string) ([]string, error) {
	n, tag := indexSlot(strings.ToLower(address))
	return s.scanIndex(ctx, s.keys.EmailIndex(n), tag, s.keys.LegacyContactsByEmail(address))
}

// indexedServices returns the service ids the NIC index points to from
// nic, unchecked, sorted, with those of the legacy index.
func (s *Store) indexedServices(ctx context.Context, nic string) ([]string, error) {
	n, tag := indexSlot(nic)
	return s.scanIndex(ctx, s.keys.NICIndex(n), tag, s.keys.LegacyNICServices(nic))
}

// indexScanCount is HSCAN's COUNT on a bucket: a bucket in the listpack
// encoding comes whole whatever it says; a large one (an agency's
// thousands of services) comes in pages of this many.
const indexScanCount = 4096

// scanIndex returns, sorted and without repeats, the targets of the
// fields of bucket that start with tag, and the members of the legacy
// SET; the first page of the bucket and the SET come in one round trip.
func (s *Store) scanIndex(ctx context.Context, bucket, tag, legacy string) ([]string, error) {
	pipe := s.rdb.Pipeline()
	page := pipe.HScan(ctx, bucket, 0, tag+"*", indexScanCount)
	old := pipe.SMembers(ctx, legacy)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, storeErr(err)
	}
	out := old.Val()
	fields, cursor := page.Val()
	for {
		for i := 0; i < len(fields); i += 2 {
			out = append(out, strings.TrimPrefix(fields[i], tag))
		}
		if cursor == 0 {
			break
		}
		var err error
		if fields, cursor, err = s.rdb.HScan(ctx, bucket, cursor, tag+"*", indexScanCount).Result(); err != nil {
			return nil, storeErr(err)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ReindexResult says what ReindexDirectory did.
type ReindexResult struct {
	Contacts  int `json:"contacts"`       // contacts indexed
	Converted int `json:"converted"`      // of which rewritten with the short field names
	Services  int `json:"services"`       // services indexed
	Removed   int `json:"removed_legacy"` // legacy index keys removed
}

// renameFieldsScript renames the fields of the hash KEYS[1] named by the
// odd ARGV to the names that follow them, unless the new name is there
// already (written since); the old fields go either way. It returns the
// number of fields renamed. One key: safe in a Cluster, and atomic
// against a writer setting the new fields meanwhile.
var renameFieldsScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then
    if redis.call('HSETNX', KEYS[1], ARGV[i+1], v) == 1 then n = n + 1 end
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n`)

// ReindexDirectory rebuilds the directory's indexes from the contacts and
// services themselves, rewrites contacts stored with the long field names,
// then removes the indexes of the previous layout (one SET per address and
// per NIC). It is meant to run once after an upgrade; it is safe to run
// again, and while daemons run: readers use both layouts until the old one
// is gone, and the new pointers are in place before it goes.
func (s *Store) ReindexDirectory(ctx context.Context) (ReindexResult, error) {
	var res ReindexResult
	var mu sync.Mutex
	count := func(f *int, n int) { mu.Lock(); *f += n; mu.Unlock() }
	err := s.scanEach(ctx, s.keys.ContactPattern(), func(keys []string) error {
		n, converted, err := s.reindexContacts(ctx, keys)
		count(&res.Contacts, n)
		count(&res.Converted, converted)
		return err
	})
	if err == nil {
		err = s.scanEach(ctx, s.keys.ServicePattern(), func(keys []string) error {
			n, err := s.reindexServices(ctx, keys)
			count(&res.Services, n)
			return err
		})
	}
	for _, pattern := range []string{s.keys.LegacyContactsByEmailPattern(), s.keys.LegacyNICServicesPattern()} {
		if err != nil {
			break
		}
		err = s.scanEach(ctx, pattern, func(keys []string) error {
			// One DEL a key: in a Cluster, the keys are in many slots.
			pipe := s.rdb.Pipeline()
			for _, k := range keys {
				pipe.Del(ctx, k)
			}
			_, err := pipe.Exec(ctx)
			count(&res.Removed, len(keys))
			return err
		})
	}
	return res, storeErr(err)
}

// reindexContacts indexes the contacts stored under keys, and renames the
// long fields of those that have them.
func (s *Store) reindexContacts(ctx context.Context, keys []string) (int, int, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HGetAll(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, 0, err
	}
	var renames []any
	for f, old := range legacyContactFields {
		renames = append(renames, old, f)
	}
	pipe = s.rdb.Pipeline()
	n, converted := 0, 0
	for i, k := range keys {
		nic := strings.TrimPrefix(k, s.keys.Contact(""))
		c := decodeContact(nic, cmds[i].Val())
		if c.Email == "" {
			continue // gone since the scan
		}
		key, field := emailEntry(s.keys, c.Email, nic)
		pipe.HSet(ctx, key, field, "")
		for _, old := range legacyContactFields {
			if _, ok := cmds[i].Val()[old]; ok {
				renameFieldsScript.Eval(ctx, pipe, []string{k}, renames...)
				converted++
				break
			}
		}
		n++
	}
	_, err := pipe.Exec(ctx)
	return n, converted, err
}

// reindexServices adds the NIC index's pointers of the services stored
// under keys.
func (s *Store) reindexServices(ctx context.Context, keys []string) (int, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, k, string(Admin), string(Tech), string(Billing))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	pipe = s.rdb.Pipeline()
	n := 0
	for i, k := range keys {
		_, id, ok := strings.Cut(k, "}:"+sfxService)
		if !ok {
			continue
		}
		var nics []string
		for _, v := range cmds[i].Val() {
			if nic, _ := v.(string); nic != "" {
				nics = append(nics, nic)
			}
		}
		if len(nics) > 0 {
			s.pointServices(ctx, pipe, id, nics...)
			n++
		}
	}
	_, err := pipe.Exec(ctx)
	return n, err
}

// scanEach calls f with the keys matching pattern, a thousand at a time,
// on every master of a Cluster (at the same time) or on the one server.
func (s *Store) scanEach(ctx context.Context, pattern string, f func([]string) error) error {
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := f(keys); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	}
	return scan(ctx, s.rdb)
}
