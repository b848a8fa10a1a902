# promtool (Debian's prometheus package) checks and unit-tests the alert
# rules of docs/alerts.yml (metrics/alerts_test.go).
start_extra_promtool() {
  need prometheus promtool || true
}
