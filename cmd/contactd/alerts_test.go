package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promtool finds promtool (Debian's prometheus package, which the test
// command installs); under CI its absence fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus)")
		}
		t.Skip("SKIPPED: promtool is not installed (Debian package prometheus)")
	}
	return p
}

// alertNames lists the alerts of the rules file at path.
func alertNames(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s names no alert", path)
	}
	return names
}

// asSeries turns the contactd series of a scrape into promtool input
// series of the target job="contactd", instance: each holds its scraped
// value for an hour, beside up at 1.
func asSeries(t *testing.T, scrape, instance string) []string {
	t.Helper()
	target := fmt.Sprintf(`job="contactd",instance=%q`, instance)
	out := []string{fmt.Sprintf(`      - series: 'up{%s}'`+"\n        values: '1x60'", target)}
	for _, line := range strings.Split(scrape, "\n") {
		if !strings.HasPrefix(line, "contactd_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series, value := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("scraped line %q has no finite value", line)
		}
		if name, labels, ok := strings.Cut(series, "{"); ok {
			series = name + "{" + target + "," + labels
		} else {
			series += "{" + target + "}"
		}
		out = append(out, fmt.Sprintf("      - series: '%s'\n        values: '%sx60'", series,
			strconv.FormatFloat(v, 'g', -1, 64)))
	}
	return out
}

// The metrics a web process (--components http) really exports, all its
// dependencies healthy, held for an hour, make no alert of
// docs/alerts.yml fire.
func TestHealthyWebProcessFiresNoAlert(t *testing.T) {
	tool := promtool(t)
	rules, err := filepath.Abs("../../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "http", 50*time.Millisecond, nil)
	scrape := p.waitMetrics("refreshed", "contactd_redis_up 1", `contactd_requests{status="pending"}`)
	var b strings.Builder
	fmt.Fprintf(&b, "rule_files:\n  - %s\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n", rules)
	b.WriteString(strings.Join(asSeries(t, scrape, "web"), "\n") + "\n    alert_rule_test:\n")
	for _, name := range alertNames(t, rules) {
		fmt.Fprintf(&b, "      - {eval_time: 59m, alertname: %s, exp_alerts: []}\n", name)
	}
	test := filepath.Join(t.TempDir(), "web_test.yml")
	if err := os.WriteFile(test, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "test", "rules", test).CombinedOutput(); err != nil {
		t.Errorf("promtool test rules on a healthy web process's metrics: %v\n%s\ntest file:\n%s", err, out, b.String())
	}
}
