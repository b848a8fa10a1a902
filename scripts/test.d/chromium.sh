# Headless Chromium for the browser test of the validation pages
# (web/browser_test.go). Without it that test is skipped, and the run says
# so at its end (or fails, with CI=true).
start_extra_chromium() {
  need chromium /usr/bin/chromium || return 0
  export CONTACTD_TEST_CHROMIUM=/usr/bin/chromium
  echo "chromium for the browser test: $CONTACTD_TEST_CHROMIUM" >&2
}
