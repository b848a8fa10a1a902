# A private Dovecot IMAP server for the inbox integration tests and
# benchmark: its own configuration, maildir and sockets under $run_dir, on
# a free loopback port, plain-text login with a test user, no TLS. The
# configuration is written in the syntax of the installed version: Dovecot
# 2.3 (Debian 12) or 2.4 and later (Debian 13), which changed it.
#
# Exports CONTACTD_TEST_IMAP (host:port), CONTACTD_TEST_IMAP_USER,
# CONTACTD_TEST_IMAP_PASSWORD, CONTACTD_TEST_DOVECOT_CONFIG, and
# CONTACTD_TEST_DOVECOT_PIDFILE (the master's PID: kill it and the server
# restarts a second later). The tests that need it skip loudly when these
# are unset.

# dovecot_is_24 succeeds when the installed Dovecot is 2.4 or later.
dovecot_is_24() {
  local v major minor
  v=$(/usr/sbin/dovecot --version 2>/dev/null) || return 1
  v=${v%% *}
  major=${v%%.*}
  minor=${v#*.}
  minor=${minor%%.*}
  [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 4 ]; }
}

# dovecot_conf_23 DIR PORT: the configuration in Dovecot 2.3's syntax.
dovecot_conf_23() {
  cat <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $1/run
state_dir = $1/state
instance_name = contactd-test-$2
log_path = $1/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = $dovecot_login_user
default_internal_user = $dovecot_internal_user
first_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:$1/mail/%u
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 100
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $1/users
}
userdb {
  driver = static
  args = uid=$dovecot_mail_user gid=$dovecot_mail_group home=$1/mail/%u
}
CONF
  dovecot_services "$2"
}

# dovecot_conf_24 DIR PORT: the same configuration in Dovecot 2.4's syntax
# (versioned, named passdb and userdb, %{user}, mail_driver and mail_path,
# auth_allow_cleartext).
dovecot_conf_24() {
  cat <<CONF
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
protocols = imap
listen = 127.0.0.1
base_dir = $1/run
state_dir = $1/state
instance_name = contactd-test-$2
log_path = $1/log
ssl = no
auth_allow_cleartext = yes
auth_mechanisms = plain login
default_login_user = $dovecot_login_user
default_internal_user = $dovecot_internal_user
first_valid_uid = 0
first_valid_gid = 0
mail_driver = maildir
mail_home = $1/mail/%{user}
mail_path = $1/mail/%{user}
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 100
passdb passwd-file {
  passwd_file_path = $1/users
}
userdb static {
  fields {
    uid = $dovecot_mail_user
    gid = $dovecot_mail_group
    home = $1/mail/%{user}
  }
}
CONF
  dovecot_services "$2"
}

# dovecot_services PORT: the service blocks, the same in both syntaxes.
dovecot_services() {
  cat <<CONF
service imap-login {
  inet_listener imap {
    port = $1
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = 100
}
service auth {
  user = $(id -un)
}
CONF
}

# dovecot_users: processes run as the user running the tests, except what
# Dovecot will not run as root: login processes (the package's
# unprivileged users, chrooted into base_dir) and mail processes (nobody,
# reaching its maildir through $run_dir, made traversable).
dovecot_users() {
  dovecot_login_user=$(id -un) dovecot_internal_user=$(id -un)
  dovecot_mail_user=$(id -un) dovecot_mail_group=$(id -gn)
  if [ "$(id -u)" = 0 ]; then
    id dovenull >/dev/null 2>&1 && dovecot_login_user=dovenull
    id dovecot >/dev/null 2>&1 && dovecot_internal_user=dovecot
    dovecot_mail_user=nobody dovecot_mail_group=$(id -gn nobody)
  fi
}

# run_dovecot PORT: write the configuration for PORT and start a small
# supervisor that runs Dovecot in the foreground and starts it again a
# second after it dies, so a test may kill the server (its master PID is
# in $dir/run/master.pid) and see it come back; stopping the supervisor
# stops Dovecot.
run_dovecot() {
  local dir=$dovecot_dir
  rm -rf "$dir/run" && mkdir -p "$dir/run"
  chmod 755 "$dir/run"
  if dovecot_is_24; then dovecot_conf_24 "$dir" "$1"; else dovecot_conf_23 "$dir" "$1"; fi >"$dir/dovecot.conf"
  : >"$dir/log"
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
  server_pid=$! server_log=$dir/log
}

start_extra_dovecot() {
  need dovecot-imapd /usr/sbin/dovecot || return 0
  dovecot_dir=$run_dir/dovecot
  mkdir -p "$dovecot_dir/state" "$dovecot_dir/mail"
  chmod 755 "$dovecot_dir"
  dovecot_users
  if [ "$(id -u)" = 0 ]; then
    chmod o+x "$run_dir"
    chown "$dovecot_mail_user:$dovecot_mail_group" "$dovecot_dir/mail"
  fi
  printf '%s:{PLAIN}%s\n' contacts contacts-test >"$dovecot_dir/users"
  start_server dovecot run_dovecot || return 0
  export CONTACTD_TEST_IMAP=127.0.0.1:$server_port
  export CONTACTD_TEST_IMAP_USER=contacts CONTACTD_TEST_IMAP_PASSWORD=contacts-test
  export CONTACTD_TEST_DOVECOT_CONFIG=$dovecot_dir/dovecot.conf CONTACTD_TEST_DOVECOT_PIDFILE=$dovecot_dir/run/master.pid
  echo "dovecot $(/usr/sbin/dovecot --version | cut -d' ' -f1) on $CONTACTD_TEST_IMAP" >&2
}
