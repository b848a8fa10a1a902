# Headless Chromium for the browser test of the validation pages
# (web/browser_test.go). Without it that test is skipped, loudly.
start_extra_chromium() {
  if need chromium /usr/bin/chromium; then
    export CONTACTD_TEST_CHROMIUM=/usr/bin/chromium
    echo "chromium for the browser test: $CONTACTD_TEST_CHROMIUM" >&2
  fi
}
