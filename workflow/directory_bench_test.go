package workflow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkServicesOfAgency lists the services of a NIC holding roles on
// 10,000 of them ("My contacts", and what a hand-over starts from),
// against the real Redis; one op is one listing.
func BenchmarkServicesOfAgency(b *testing.B) {
	s, _, hook := realStore(b)
	ctx := context.Background()
	const n = 10000
	var dir strings.Builder
	dir.WriteString("contacts:\n  - {nic: ag1-ovh, email: agency@example.com}\n  - {nic: cu1-ovh, email: customer@example.com}\nservices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&dir, "  - {id: s%05d.example, admin: cu1-ovh, tech: ag1-ovh, billing: cu1-ovh}\n", i)
	}
	if _, err := s.Import(ctx, []byte(dir.String())); err != nil {
		b.Fatal(err)
	}
	hook.Reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l, err := s.ServicesOf(ctx, "ag1-ovh")
		if err != nil || len(l) != n {
			b.Fatalf("%d services, %v", len(l), err)
		}
	}
	b.ReportMetric(float64(hook.N())/float64(b.N), "round-trips/op")
}
