# promtool (Debian's prometheus package) checks and unit-tests the alert
# rules of docs/alerts.yml against docs/alerts_test.yml: Redis down with
# the scrape still succeeding, a relay broken since the start, one kind of
# email idle while others leave, a healthy web process, a worker process
# down. The Go tests run them too (metrics/alerts_test.go), and feed the
# metrics a real web process exports to the rules
# (cmd/contactd/alerts_test.go).
start_extra_promtool() {
  need prometheus promtool || true
}

check_extra_promtool() {
  command -v promtool >/dev/null 2>&1 || return 0
  echo "checking docs/alerts.yml with promtool" >&2
  (cd docs && promtool check rules alerts.yml >/dev/null && promtool test rules alerts_test.yml >/dev/null) ||
    { (cd docs && promtool check rules alerts.yml; promtool test rules alerts_test.yml) >&2; return 1; }
}
