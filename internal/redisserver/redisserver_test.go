package redisserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartAndInfo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Start(ctx, Options{Dir: dir, AOF: true})
	if errors.Is(err, ErrNotInstalled) {
		t.Skip("SKIPPED: " + err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()

	if v, err := Version(ctx, c); err != nil || v == "" {
		t.Errorf("Version = %q, %v", v, err)
	}
	if aof, err := c.ConfigGet(ctx, "appendfsync").Result(); err != nil || aof["appendfsync"] != "everysec" {
		t.Errorf("appendfsync = %v, %v; want everysec", aof, err)
	}
	before, err := CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	mem0, err := UsedMemory(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Keys(ctx, c); err != nil || n != 0 {
		t.Errorf("Keys of an empty server = %d, %v", n, err)
	}
	for i := range 100 {
		c.Set(ctx, "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), make([]byte, 1000), 0)
	}
	c.Eval(ctx, "redis.call('GET', KEYS[1]); return redis.call('GET', KEYS[1])", []string{"ka"})
	after, err := CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if d := after["set"] - before["set"]; d != 100 {
		t.Errorf("SET calls grew by %d, want 100", d)
	}
	if d := after["get"] - before["get"]; d != 2 {
		t.Errorf("GET calls grew by %d, want the 2 of the script", d)
	}
	if d := after["eval"] - before["eval"]; d != 1 {
		t.Errorf("EVAL calls grew by %d, want 1", d)
	}
	mem1, err := UsedMemory(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	c2 := redis.NewClient(&redis.Options{Addr: s.Addr, DB: 2})
	defer c2.Close()
	c2.Set(ctx, "elsewhere", 1, 0)
	if n, err := Keys(ctx, c); err != nil || n != 101 {
		t.Errorf("Keys = %d, %v; want the 100 of db 0 and 1 of db 2", n, err)
	}
	if d := mem1 - mem0; d < 100_000 {
		t.Errorf("used_memory grew by %d bytes for 100 values of 1000, want at least 100000", d)
	}
	if _, err := CPU(ctx, c); err != nil {
		t.Error(err)
	}
	pid := s.PID()
	s.Stop()
	if _, err := os.Stat(filepath.Join(dir, "appendonlydir")); err != nil {
		t.Errorf("no AOF in the data directory: %v", err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Errorf("redis-server %d still answers after Stop", pid)
	}
}

func TestStartWithoutBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Start without redis-server = %v, want ErrNotInstalled", err)
	}
}
