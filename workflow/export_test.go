package workflow

import "context"

// IndexedServices exposes the unchecked pointers of the NIC index to the
// tests of the directory.
func (s *Store) IndexedServices(ctx context.Context, nic string) ([]string, error) {
	return s.indexedServices(ctx, nic)
}

// IndexedNICs exposes the unchecked pointers of the email index.
func (s *Store) IndexedNICs(ctx context.Context, address string) ([]string, error) {
	return s.indexedNICs(ctx, address)
}

// IndexSlot exposes where a NIC or an address falls in an index.
var IndexSlot = indexSlot
