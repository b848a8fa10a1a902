package workflow

import (
	"bytes"
	"context"
	"hash/maphash"
	"io"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// An import is all-or-nothing by checking everything before the first
// write: the file is read four times, record by record (importsplit.go),
// and never held in memory.
//
//  1. The contacts are checked; each NIC is kept as a 64-bit hash (keyed
//     at random for each import), 8 bytes a contact.
//  2. The services are checked, each id kept the same way; the NICs they
//     name that are not among the file's contacts are looked up in the
//     store, importBatch at a time.
//  3. The contacts are written, then 4. the services, in pipelined batches
//     of importBatch records, one batch being sent while the next is read.
//
// Its memory is then bounded by the number of records (8 bytes each), not
// by the size of the file. A NIC or id whose hash appears twice sends the
// check through its list once more, to find the record listed twice by
// its name (two names with one hash are no repeat). A service naming a
// NIC found nowhere whose hash equals that of a contact of the file would
// be let through: about one chance in 10^13 per such NIC for a file of a
// million contacts, and another run draws another key.
//
// The writes are an upsert: when Redis fails half-way, what was written
// stays, and running the import again completes it.

// importBatch is the number of records in each pipelined write, and of
// NICs in each look-up.
const importBatch = 1000

// ImportResult counts the records an import wrote.
type ImportResult struct {
	Contacts int `json:"contacts"`
	Services int `json:"services"`
}

// Directory is the content of an import file held in memory.
type Directory struct {
	Contacts []Contact `yaml:"contacts"`
	Services []Service `yaml:"services"`
}

// ImportReader checks the import file r, reading it as a stream, then
// upserts every record. One bad record rejects the file, with its line,
// and nothing is written. r is read several times from its start.
func (s *Store) ImportReader(ctx context.Context, r io.ReadSeeker) (ImportResult, error) {
	im := s.importer(r, s.inStore)
	if err := im.check(ctx); err != nil {
		return ImportResult{}, err
	}
	return im.write(ctx)
}

// Import checks a whole import file held in memory, then upserts every
// record and returns them. One bad record rejects the file and nothing is
// written. ImportReader does the same for a file of any size.
func (s *Store) Import(ctx context.Context, data []byte) (*Directory, error) {
	d := &Directory{}
	im := s.importer(bytes.NewReader(data), s.inStore)
	im.onContact = func(c Contact) { d.Contacts = append(d.Contacts, c) }
	im.onService = func(v Service) { d.Services = append(d.Services, v) }
	if err := im.check(ctx); err != nil {
		return nil, err
	}
	if _, err := im.write(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// ParseDirectory reads an import file and checks every record, without
// touching the store; known tells whether a NIC is already in the
// directory (a service may name contacts of the file or of the store). The
// first bad record is reported with its line in the file.
func (s *Store) ParseDirectory(data []byte, known func(string) (bool, error)) (*Directory, error) {
	d := &Directory{}
	im := s.importer(bytes.NewReader(data), func(_ context.Context, nics []string) ([]bool, error) {
		out := make([]bool, len(nics))
		for i, nic := range nics {
			ok, err := known(nic)
			if err != nil {
				return nil, err
			}
			out[i] = ok
		}
		return out, nil
	})
	im.onContact = func(c Contact) { d.Contacts = append(d.Contacts, c) }
	im.onService = func(v Service) { d.Services = append(d.Services, v) }
	if err := im.check(context.Background()); err != nil {
		return nil, err
	}
	return d, nil
}

// inStore tells, in one round trip, which of nics are contacts of the
// directory.
func (s *Store) inStore(ctx context.Context, nics []string) ([]bool, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(nics))
	for i, nic := range nics {
		cmds[i] = pipe.Exists(ctx, s.keys.Contact(nic))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]bool, len(nics))
	for i, c := range cmds {
		out[i] = c.Val() == 1
	}
	return out, nil
}

// importer runs the passes of one import.
type importer struct {
	s     *Store
	r     io.ReadSeeker
	known func(ctx context.Context, nics []string) ([]bool, error)
	seed  maphash.Seed
	nics  hashSet // the file's contacts
	// onContact and onService, when set, see each record once checked.
	onContact func(Contact)
	onService func(Service)
}

func (s *Store) importer(r io.ReadSeeker, known func(context.Context, []string) ([]bool, error)) *importer {
	return &importer{s: s, r: r, known: known, seed: maphash.MakeSeed()}
}

// pass reads the file from its start and calls f with each record of want.
func (im *importer) pass(want section, f func(*record) error) error {
	if _, err := im.r.Seek(0, io.SeekStart); err != nil {
		return Errorf(EInvalidRequest, "the import file is read more than once, so it must be a regular file: %v", err)
	}
	sp := newSplitter(im.r)
	for {
		c, err := sp.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := sp.eachRecord(c, want, f); err != nil {
			return err
		}
	}
}

// contact decodes and checks a contact record.
func (im *importer) contact(r *record) (Contact, error) {
	c := Contact{PaymentOK: true}
	if r.node != nil || !quickContact(r.text, &c) {
		c = Contact{PaymentOK: true}
		n, err := r.decode()
		if err != nil {
			return c, err
		}
		if err := decodeStrict(n, &c, contactFields); err != nil {
			return c, err
		}
	}
	c, err := im.s.CheckContact(c)
	if err != nil {
		return c, lineErr(r.line, err)
	}
	return c, nil
}

// service decodes and checks a service record, all but whether the
// contacts it names exist.
func (im *importer) service(r *record) (Service, error) {
	var v Service
	if r.node != nil || !quickService(r.text, &v) {
		v = Service{}
		n, err := r.decode()
		if err != nil {
			return v, err
		}
		if err := decodeStrict(n, &v, serviceFields); err != nil {
			return v, err
		}
	}
	v, err := im.s.checkService(v, func(string) bool { return true })
	if err != nil {
		return v, lineErr(r.line, err)
	}
	return v, nil
}

// check runs the two checking passes.
func (im *importer) check(ctx context.Context) error {
	if err := im.checkContacts(); err != nil {
		return err
	}
	return im.checkServices(ctx)
}

func (im *importer) checkContacts() error {
	err := im.pass(contactsSection, func(r *record) error {
		c, err := im.contact(r)
		if err != nil {
			return err
		}
		im.nics.add(maphash.String(im.seed, c.NIC))
		if im.onContact != nil {
			im.onContact(c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return im.duplicates(contactsSection, im.nics.sort(), func(r *record) (string, error) {
		c, err := im.contact(r)
		return c.NIC, err
	})
}

// holder is a NIC a service names that is not a contact of the file.
type holder struct {
	line    int
	service string
	role    Role
	nic     string
}

func (im *importer) checkServices(ctx context.Context) error {
	var ids hashSet
	var pending []holder
	err := im.pass(servicesSection, func(r *record) error {
		v, err := im.service(r)
		if err != nil {
			// A service before it may name a contact that is nowhere.
			if perr := im.lookUp(ctx, pending); perr != nil {
				return perr
			}
			return err
		}
		ids.add(maphash.String(im.seed, v.ID))
		for _, role := range Roles {
			if !im.nics.has(maphash.String(im.seed, v.Holder(role))) {
				pending = append(pending, holder{line: r.line, service: v.ID, role: role, nic: v.Holder(role)})
			}
		}
		if len(pending) >= importBatch {
			if err := im.lookUp(ctx, pending); err != nil {
				return err
			}
			pending = pending[:0]
		}
		if im.onService != nil {
			im.onService(v)
		}
		return nil
	})
	if err == nil {
		err = im.lookUp(ctx, pending)
	}
	if err != nil {
		return err
	}
	return im.duplicates(servicesSection, ids.sort(), func(r *record) (string, error) {
		v, err := im.service(r)
		return v.ID, err
	})
}

// duplicates reports the first record of sec listed twice, given the
// hashes that appear twice (dups): it reads the list again, and tells a
// real repeat from two names with the same hash by the names themselves.
func (im *importer) duplicates(sec section, dups []uint64, name func(*record) (string, error)) error {
	if len(dups) == 0 {
		return nil
	}
	first := map[uint64]string{}
	for _, h := range dups {
		first[h] = ""
	}
	return im.pass(sec, func(r *record) error {
		key, err := name(r)
		if err != nil {
			return err
		}
		h := maphash.String(im.seed, key)
		was, ok := first[h]
		switch {
		case !ok:
		case was == "":
			first[h] = key
		case was == key:
			return errLine(r.line, "%s %s is listed twice", map[section]string{contactsSection: "contact", servicesSection: "service"}[sec], key)
		}
		return nil
	})
}

// hashSet is a set of 64-bit hashes, 8 bytes each: added to, then sorted
// once before it is looked in.
type hashSet struct{ h []uint64 }

func (s *hashSet) add(h uint64) { s.h = append(s.h, h) }

// sort sorts the set, drops repeats and returns the hashes that were
// repeated.
func (s *hashSet) sort() []uint64 {
	slices.Sort(s.h)
	var dups []uint64
	out := s.h[:0]
	for i, h := range s.h {
		if i > 0 && h == s.h[i-1] {
			if len(dups) == 0 || dups[len(dups)-1] != h {
				dups = append(dups, h)
			}
			continue
		}
		out = append(out, h)
	}
	s.h = slices.Clip(out)
	return dups
}

func (s *hashSet) has(h uint64) bool {
	_, ok := slices.BinarySearch(s.h, h)
	return ok
}

// lookUp checks that the NICs of pending are contacts of the store, and
// reports the first that is not.
func (im *importer) lookUp(ctx context.Context, pending []holder) error {
	if len(pending) == 0 {
		return nil
	}
	nics := make([]string, len(pending))
	for i, h := range pending {
		nics[i] = h.nic
	}
	known, err := im.known(ctx, nics)
	if err != nil {
		return storeErr(err)
	}
	for i, h := range pending {
		if !known[i] {
			return Errorf(EUnknownContact, "line %d: service %s: %s contact %s is not in the directory", h.line, h.service, h.role, h.nic)
		}
	}
	return nil
}

// write runs the two writing passes.
func (im *importer) write(ctx context.Context) (ImportResult, error) {
	var res ImportResult
	w := newBatchWriter(ctx, im.s.rdb)
	err := im.pass(contactsSection, func(n *record) error {
		c, err := im.contact(n)
		if err != nil {
			return err
		}
		im.s.writeContact(ctx, w.pipe, c)
		res.Contacts++
		return w.added()
	})
	if err == nil {
		err = im.pass(servicesSection, func(n *record) error {
			v, err := im.service(n)
			if err != nil {
				return err
			}
			im.s.writeService(ctx, w.pipe, v)
			res.Services++
			return w.added()
		})
	}
	if werr := w.close(); err == nil {
		err = werr
	}
	return res, err
}

// batchWriter sends pipelines of importBatch records, one at a time, while
// the next is being filled.
type batchWriter struct {
	rdb  redis.UniversalClient
	pipe redis.Pipeliner
	n    int
	jobs chan redis.Pipeliner
	done chan struct{}
	mu   sync.Mutex
	err  error // of the first batch that failed
}

func newBatchWriter(ctx context.Context, rdb redis.UniversalClient) *batchWriter {
	w := &batchWriter{rdb: rdb, pipe: rdb.Pipeline(), jobs: make(chan redis.Pipeliner, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for p := range w.jobs {
			if w.failed() != nil {
				continue
			}
			if _, err := p.Exec(ctx); err != nil {
				w.mu.Lock()
				w.err = storeErr(err)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *batchWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// added counts a record written into the current pipeline, and sends the
// pipeline when it is full. It returns the error of an earlier batch.
func (w *batchWriter) added() error {
	if w.n++; w.n < importBatch {
		return nil
	}
	if err := w.failed(); err != nil {
		return err
	}
	w.jobs <- w.pipe
	w.pipe, w.n = w.rdb.Pipeline(), 0
	return nil
}

// close sends what is left and waits for every batch.
func (w *batchWriter) close() error {
	if w.n > 0 {
		w.jobs <- w.pipe
	}
	close(w.jobs)
	<-w.done
	return w.failed()
}
