package metrics_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestAlertRules checks docs/alerts.yml with promtool and runs its unit
// tests (docs/alerts_test.yml). promtool comes with Debian's prometheus
// package, which the test command installs; under CI its absence fails.
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus)")
		}
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "../docs"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
