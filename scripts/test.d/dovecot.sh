# A private Dovecot IMAP server for the inbox integration tests and
# benchmark: its own configuration, maildir and sockets under $run_dir, on
# a free loopback port, plain-text login with a test user, no TLS.
#
# Exports CONTACTD_TEST_IMAP (host:port), CONTACTD_TEST_IMAP_USER,
# CONTACTD_TEST_IMAP_PASSWORD, CONTACTD_TEST_DOVECOT_CONFIG, and
# CONTACTD_TEST_DOVECOT_PIDFILE (the master's PID: kill it and the server
# restarts a second later). The tests that need it skip loudly when these
# are unset.

start_extra_dovecot() {
  need dovecot-imapd /usr/sbin/dovecot || return 0
  local dir="$run_dir/dovecot" port user group
  port=$(free_port)
  mkdir -p "$dir/run" "$dir/state" "$dir/mail"
  chmod 755 "$dir" "$dir/run"
  # Processes run as the user running the tests, except what Dovecot will
  # not run as root: login processes (the package's unprivileged users,
  # chrooted into base_dir) and mail processes (nobody, reaching its
  # maildir through $run_dir, made traversable).
  user=$(id -un); group=$(id -gn)
  local login_user=$user internal_user=$user mail_user=$user mail_group=$group
  if [ "$(id -u)" = 0 ]; then
    id dovenull >/dev/null 2>&1 && login_user=dovenull
    id dovecot >/dev/null 2>&1 && internal_user=dovecot
    mail_user=nobody mail_group=$(id -gn nobody)
    chmod o+x "$run_dir"
    mkdir -p "$dir/mail" && chown "$mail_user:$mail_group" "$dir/mail"
  fi
  printf '%s:{PLAIN}%s\n' contacts contacts-test >"$dir/users"
  cat >"$dir/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
instance_name = contactd-test-$port
log_path = $dir/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = $login_user
default_internal_user = $internal_user
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:$dir/mail/%u
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 100
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/users
}
userdb {
  driver = static
  args = uid=$mail_user gid=$mail_group home=$dir/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = 100
}
service auth {
  user = $user
}
CONF
  # A small supervisor runs Dovecot in the foreground and starts it again
  # a second after it dies, so a test may kill the server (its master PID
  # is in $dir/run/master.pid) and see it come back; stopping the
  # supervisor stops Dovecot.
  (
    child=
    trap '[ -n "$child" ] && kill "$child" 2>/dev/null; wait; exit 0' TERM INT
    while :; do
      /usr/sbin/dovecot -F -c "$dir/dovecot.conf" &
      child=$!
      wait "$child" || true
      sleep 1
    done
  ) &
  pids+=($!)
  if ! wait_port "$port"; then
    echo "!!! dovecot did not start (see below): the inbox Dovecot tests will be SKIPPED" >&2
    cat "$dir/log" >&2 2>/dev/null || true
    return 0
  fi
  export CONTACTD_TEST_IMAP=127.0.0.1:$port
  export CONTACTD_TEST_IMAP_USER=contacts CONTACTD_TEST_IMAP_PASSWORD=contacts-test
  export CONTACTD_TEST_DOVECOT_CONFIG=$dir/dovecot.conf CONTACTD_TEST_DOVECOT_PIDFILE=$dir/run/master.pid
  echo "dovecot on $CONTACTD_TEST_IMAP" >&2
}
