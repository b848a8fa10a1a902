package workflow

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The benchmarks of the directory need a real Redis used by nothing else
// (CONTACTD_TEST_REDIS=host:port): they measure its memory and rate. Each
// size is a sub-benchmark; run them with -benchtime 1x, for instance
//
//	go test -run XXX -bench 'DirectoryImport/services=100000$' -benchtime 1x ./workflow/
//	go test -run XXX -bench 'DirectoryMemory' -benchtime 1x ./workflow/

// benchSizes are the directory sizes measured, in services (each with three
// contacts of its own).
var benchSizes = []int{100_000, 1_000_000}

// benchRedis connects to the real Redis of the benchmarks, with a fresh
// key prefix whose keys are deleted at the end.
func benchRedis(b *testing.B) (*redis.Client, string) {
	addr := os.Getenv("CONTACTD_TEST_REDIS")
	if addr == "" {
		b.Skip("SKIPPED: set CONTACTD_TEST_REDIS=host:port to a redis-server used by nothing else")
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	// As long as the default prefix ("contactd"), for the key names to
	// weigh what they weigh in production.
	p := make([]byte, 4)
	_, _ = rand.Read(p)
	prefix := "b" + hex.EncodeToString(p)[:7]
	b.Cleanup(func() { dropPrefix(b, rdb, prefix); _ = rdb.Close() })
	return rdb, prefix
}

// dropPrefix deletes every key under prefix.
func dropPrefix(b *testing.B, rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+":*", 10000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 10000 {
			rdb.Del(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Del(ctx, batch...)
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
}

// benchRecords calls contact and service with the records of a directory
// of n services, each with an admin, a tech and a billing contact of its
// own; the sizes of the fields are those of a real directory.
func benchRecords(n int, contact func(Contact), service func(Service)) {
	nic := func(i int) string {
		return fmt.Sprintf("%c%c%d-ovh", 'a'+i%26, 'a'+i/26%26, 100000+i)
	}
	for i := 0; i < 3*n; i++ {
		contact(Contact{NIC: nic(i), Email: fmt.Sprintf("contact.%d@example-mail.com", 100000+i),
			Name: fmt.Sprintf("Contact Person %d", 100000+i), Language: []string{"en", "fr"}[i%2], PaymentOK: i%50 != 0})
	}
	kinds := []string{"domain", "web hosting", "vps", "email"}
	for i := 0; i < n; i++ {
		service(Service{ID: fmt.Sprintf("service-%d.example.com", 100000+i), Kind: kinds[i%len(kinds)],
			Admin: nic(3 * i), Tech: nic(3*i + 1), Billing: nic(3*i + 2)})
	}
}

// writeBenchFile writes the import file of benchRecords(n) into dir, one
// record a line, and returns its path.
func writeBenchFile(b *testing.B, dir string, n int) string {
	path := filepath.Join(dir, fmt.Sprintf("directory-%d.yaml", n))
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "contacts:")
	first := true
	benchRecords(n, func(c Contact) {
		fmt.Fprintf(w, "  - {nic: %s, email: %s, name: %s, language: %s", c.NIC, c.Email, c.Name, c.Language)
		if !c.PaymentOK {
			fmt.Fprint(w, ", payment_ok: false")
		}
		fmt.Fprintln(w, "}")
	}, func(v Service) {
		if first {
			fmt.Fprintln(w, "services:")
			first = false
		}
		fmt.Fprintf(w, "  - {id: %s, kind: %s, admin: %s, tech: %s, billing: %s}\n", v.ID, v.Kind, v.Admin, v.Tech, v.Billing)
	})
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// buildContactd builds the contactd command into dir.
func buildContactd(b *testing.B, dir string) string {
	bin := filepath.Join(dir, "contactd")
	out, err := exec.Command("go", "build", "-o", bin, "contactd/cmd/contactd").CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// rawWrites sends the writes of an import of benchRecords(n) (the same
// commands, in pipelines of importBatch records, one sent while the next
// is built) from records built beforehand, and returns how long it took
// and the CPU time this process spent meanwhile.
func rawWrites(b *testing.B, s *Store, n int) (time.Duration, time.Duration) {
	var contacts []Contact
	var services []Service
	benchRecords(n, func(c Contact) { contacts = append(contacts, c) }, func(v Service) { services = append(services, v) })
	ctx := context.Background()
	start, cpu := time.Now(), selfCPU()
	jobs := make(chan redis.Pipeliner, 1)
	done := make(chan error)
	go func() {
		var err error
		for p := range jobs {
			if _, e := p.Exec(ctx); e != nil && err == nil {
				err = e
			}
		}
		done <- err
	}()
	pipe, k := s.rdb.Pipeline(), 0
	next := func() {
		if k++; k == importBatch {
			jobs <- pipe
			pipe, k = s.rdb.Pipeline(), 0
		}
	}
	for _, c := range contacts {
		s.writeContact(ctx, pipe, c)
		next()
	}
	for _, v := range services {
		s.writeService(ctx, pipe, v)
		next()
	}
	jobs <- pipe
	close(jobs)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(start), selfCPU() - cpu
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU time the Redis server has used.
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, l := range strings.Split(info, "\r\n") {
		for _, f := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(l, f); ok {
				x, _ := strconv.ParseFloat(v, 64)
				total += x
			}
		}
	}
	return time.Duration(total * float64(time.Second))
}

// BenchmarkDirectoryImport runs `contactd directory import` on a file of
// n services and 3n contacts, as a child process, against a real Redis,
// and reports its rate, its peak resident memory (from the kernel's
// rusage of the child) and, measured in the same run, the rate of the
// same writes sent from records built beforehand, without any parsing.
func BenchmarkDirectoryImport(b *testing.B) {
	rdb, prefix := benchRedis(b)
	dir := b.TempDir()
	bin := buildContactd(b, dir)
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte("redis: {addr: \""+rdb.Options().Addr+"\", key_prefix: "+prefix+"}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	s, err := NewStore(rdb, Options{KeyPrefix: prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range benchSizes {
		b.Run("services="+strconv.Itoa(n), func(b *testing.B) {
			path := writeBenchFile(b, dir, n)
			defer os.Remove(path)
			st, _ := os.Stat(path)
			records := float64(4 * n)
			for i := 0; i < b.N; i++ {
				r0 := redisCPU(b, rdb)
				took, cpu, rss, base := runImport(b, bin, conf, path)
				r1 := redisCPU(b, rdb)
				dropPrefix(b, rdb, prefix)
				r2 := redisCPU(b, rdb)
				raw, rawCPU := rawWrites(b, s, n)
				r3 := redisCPU(b, rdb)
				dropPrefix(b, rdb, prefix)
				importCPU, baseCPU := cpu+r1-r0, rawCPU+r3-r2
				b.ReportMetric(records/took.Seconds(), "records/s")
				b.ReportMetric(records/raw.Seconds(), "raw-records/s")
				b.ReportMetric(raw.Seconds()/took.Seconds(), "ratio")
				b.ReportMetric(baseCPU.Seconds()/importCPU.Seconds(), "cpu-ratio")
				b.ReportMetric(float64(rss)/1024, "peak-RSS-MiB")
				b.Logf("%d services, %d contacts, file %.1f MB: import %v (%.0f records/s; CPU %v, Redis's %v), peak RSS %.0f MiB (launched from %.0f MiB); "+
					"raw writes %v (%.0f records/s; CPU %v, Redis's %v); ratio %.2f, CPU ratio %.2f",
					n, 3*n, float64(st.Size())/1e6, took.Round(time.Millisecond), records/took.Seconds(), cpu.Round(time.Millisecond), (r1 - r0).Round(time.Millisecond),
					float64(rss)/1024, float64(base)/1024, raw.Round(time.Millisecond), records/raw.Seconds(), rawCPU.Round(time.Millisecond), (r3 - r2).Round(time.Millisecond),
					raw.Seconds()/took.Seconds(), baseCPU.Seconds()/importCPU.Seconds())
			}
		})
	}
}

// runImport runs `contactd directory import` and returns how long it took,
// its CPU time, its peak resident memory in KiB, and the resident memory
// of this process when it started the command. The child is started with vfork,
// so the kernel counts this process's peak as the child's until it
// executes contactd: this process returns its free memory to the system
// and resets its peak first (clear_refs), so that the figure is the
// larger of the child's peak and this process's size at that moment.
func runImport(b *testing.B, bin, conf, path string) (time.Duration, time.Duration, int64, int64) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatalf("resetting this process's peak memory: %v", err)
	}
	base := procStatusKiB(b, "VmHWM")
	start := time.Now()
	cmd := exec.Command(bin, "directory", "import", "--config", conf, path)
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("import: %v\n%s", err, out)
	}
	return took, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, base
}

// procStatusKiB reads a figure in KiB from /proc/self/status.
func procStatusKiB(b *testing.B, name string) int64 {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	b.Fatalf("no %s in /proc/self/status", name)
	return 0
}

// BenchmarkDirectoryMemory imports a directory of n services, each with
// three contacts of its own, and reports what it takes in Redis per
// service: the MEMORY USAGE of every key the directory wrote, and the
// growth of used_memory (which also counts Redis's own tables).
func BenchmarkDirectoryMemory(b *testing.B) {
	rdb, prefix := benchRedis(b)
	s, err := NewStore(rdb, Options{KeyPrefix: prefix, NICPattern: `^[a-z]{2}[0-9]+-ovh$`})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for _, n := range benchSizes {
		b.Run("services="+strconv.Itoa(n), func(b *testing.B) {
			path := writeBenchFile(b, dir, n)
			defer os.Remove(path)
			for i := 0; i < b.N; i++ {
				before := redisUsedMemory(b, rdb)
				benchImportFile(b, s, path)
				growth := redisUsedMemory(b, rdb) - before
				keys, usage := keysUsage(b, rdb, prefix)
				dropPrefix(b, rdb, prefix)
				b.ReportMetric(float64(usage)/float64(n), "usage-B/service")
				b.ReportMetric(float64(growth)/float64(n), "used_memory-B/service")
				b.ReportMetric(float64(keys)/float64(n), "keys/service")
				b.Logf("%d services: %d keys; per service with its three contacts: MEMORY USAGE %d B, used_memory growth %d B",
					n, keys, usage/int64(n), growth/int64(n))
			}
		})
	}
}

// benchImportFile imports the file at path.
func benchImportFile(b *testing.B, s *Store, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := s.ImportReader(context.Background(), f); err != nil {
		b.Fatal(err)
	}
}

func redisUsedMemory(b *testing.B, rdb *redis.Client) int64 {
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// keysUsage counts the keys under prefix and adds up their MEMORY USAGE.
func keysUsage(b *testing.B, rdb *redis.Client, prefix string) (int64, int64) {
	ctx := context.Background()
	var keys, total int64
	var cursor uint64
	for {
		batch, next, err := rdb.Scan(ctx, cursor, prefix+":*", 10000).Result()
		if err != nil {
			b.Fatal(err)
		}
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.MemoryUsage(ctx, k, 0)
		}
		if len(batch) > 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range cmds {
			total += c.Val()
		}
		keys += int64(len(batch))
		if cursor = next; cursor == 0 {
			return keys, total
		}
	}
}
