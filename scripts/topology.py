#!/usr/bin/env python3
"""Production-like topologies of the backing servers, for scripts/stack (stdlib only).

scripts/stack calls this (after ensure_deps, holding DIR/.lock) for `up` with a topology
flag, and for down/status/kill/start/promote when DIR/topology.json exists. Not meant to
be run by hand; see the header of scripts/stack for the commands and flags.

  topology.py up      --dir DIR [--free-ports] [--tls] [--nats-cluster]
                      [--redis-cluster | --redis-sentinel] [--pg-standby] [--ha]
  topology.py down    --dir DIR [--purge]
  topology.py status  --dir DIR
  topology.py kill    --dir DIR NODE [--signal KILL|TERM|QUIT]
  topology.py start   --dir DIR NODE
  topology.py promote --dir DIR
  topology.py retire  --dir DIR   (plain `up` on a DIR that held a topology: fails while a
                                   node of it runs, else deletes its data)

Inputs from scripts/stack (environment): STACK_NATS_SERVER, STACK_REDIS_SERVER,
STACK_REDIS_CLI, STACK_PG_BINDIR, STACK_PG_USER (the PostgreSQL cluster owner: PostgreSQL
refuses root), STACK_START_TIMEOUT (seconds, default 60).

Layout of DIR: topology.json (every node: name, kind, role, ports, pid file, data dir, log
file, config; the TLS files; the env), env (export lines), tls/ (CA and certificates),
nodes/NAME/ (data, log, pid file and config of each NATS and Redis node), nodes/postgres/
(owned by the PostgreSQL user: one data dir and log per PostgreSQL node, tls/ copies of the
certificates; in /tmp/smpp-connector-pg-HASH-topology when that user cannot reach DIR).

Progress and errors go to stderr, the env to stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT = float(os.environ.get("STACK_START_TIMEOUT") or 60)
PG_DATABASE = "smpp"
PG_SUPERUSER = "postgres"
SENTINEL_SERVICE = "smpp"
NATS_CLUSTER_NAME = "smpp"
STANDBY_NAME = "standby1"

# Fixed ports (without --free-ports). Index i of a cluster adds i. Apart from the plain
# stack's (14222, 18222, 16379, 15432) so that both can run side by side.
DEFAULT_PORTS = {
    "nats": {"client": 24222, "monitor": 28222, "route": 26222},
    "redis": {"client": 26379},
    "redis-cluster": {"client": 26380, "bus": 36380},
    "redis-primary": {"client": 26390},
    "redis-replica": {"client": 26391},
    "sentinel": {"client": 26400},
    "pg": {"client": 25432},
    "pg-primary": {"client": 25432},
    "pg-standby": {"client": 25433},
}


class Fail(Exception):
    """An error to report: the message, and the logs whose tails explain it."""

    def __init__(self, message: str, logs: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.logs = list(logs)


def info(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def tail_log(path: str, lines: int = 30) -> None:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        text = []
    if not text:
        print(f"(log {path} is empty or missing)", file=sys.stderr)
        return
    print(f"----- last {lines} lines of {path} -----", file=sys.stderr)
    for line in text[-lines:]:
        print(line, file=sys.stderr)
    print(f"----- end of {path} -----", file=sys.stderr, flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def tool(var: str, fallback: str) -> str:
    path = os.environ.get(var) or shutil.which(fallback)
    if not path:
        raise Fail(f"{fallback} not found ({var} unset): run this through scripts/stack")
    return path


def pg_tool(name: str) -> str:
    bindir = os.environ.get("STACK_PG_BINDIR", "")
    if bindir and os.access(os.path.join(bindir, name), os.X_OK):
        return os.path.join(bindir, name)
    path = shutil.which(name)
    if not path:
        raise Fail(f"PostgreSQL program {name} not found (STACK_PG_BINDIR={bindir or 'unset'})")
    return path


def client_env() -> dict[str, str]:
    """Our environment without PG* variables: a sourced env must not redirect our psql."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def run(argv: list[str], *, timeout: float = 30, as_pg: str | None = None,
        check: bool = False, log: str | None = None) -> subprocess.CompletedProcess:
    """Run a command to completion, output captured (or appended to `log`). `as_pg`: the
    user to run it as when we are root (PostgreSQL's programs refuse root)."""
    if as_pg and is_root():
        argv = ["runuser", "-u", as_pg, "--"] + argv
    kwargs: dict = {"stdin": subprocess.DEVNULL, "cwd": "/", "env": client_env(), "timeout": timeout}
    if log:
        with open(log, "ab") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        proc.stdout = b""
    else:
        proc = subprocess.run(argv, capture_output=True, **kwargs)
    if check and proc.returncode != 0:
        output = (proc.stdout or b"").decode(errors="replace") + (proc.stderr or b"").decode(errors="replace")
        raise Fail(f"{' '.join(argv)} failed (exit {proc.returncode}): {output.strip()[-2000:]}",
                   [log] if log else [])
    return proc


# ---------------------------------------------------------------------------------------
# Processes and ports

def proc_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(path: str) -> int | None:
    try:
        first = Path(path).read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    digits = "".join(c for c in first if c.isdigit())
    return int(digits) if digits else None


MARKER = {"nats": "nats-server", "redis": "redis-server", "sentinel": "redis-server",
          "postgres": "postgres"}


def node_pid(node: dict) -> int | None:
    """The pid of a running node (checked against its program name), else None."""
    pid = read_pid(node["pid_file"])
    if pid and proc_running(pid) and MARKER[node["kind"]] in cmdline(pid):
        return pid
    return None


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def check_ports_free(node: dict) -> None:
    for key, port in node["ports"].items():
        if port_in_use(port):
            raise Fail(f"port {port} ({node['name']} {key}) on 127.0.0.1 is in use by another "
                       "process: use --free-ports, or stop it")


def wait_for(what: str, check, logs: list[str], nodes: list[dict] = (),
             timeout: float | None = None):
    """Poll `check` until it returns something true; fail (with the logs) after the
    timeout or when one of `nodes` is no longer running (checked after 2 s: a daemonizing
    server writes its pid file a moment after it was started)."""
    timeout = TIMEOUT if timeout is None else timeout
    begun = time.monotonic()
    deadline = begun + timeout
    last_error = ""
    while True:
        try:
            result = check()
        except Fail:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of a probe means "not yet"
            result, last_error = None, f" (last error: {e})"
        if result:
            return result
        for node in nodes if time.monotonic() - begun > 2 else ():
            if node_pid(node) is None:
                raise Fail(f"{node['name']} exited while waiting for {what}", logs)
        if time.monotonic() >= deadline:
            raise Fail(f"{what}: not within {timeout:.0f}s{last_error}", logs)
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------
# TLS: a CA, a server certificate (localhost, 127.0.0.1), a client certificate, and an
# unrelated CA, made with the openssl CLI. EC P-256, X.509 v3, valid 5 days.

EXTENSIONS = """\
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def make_pki(tls_dir: Path) -> dict:
    openssl = tool("STACK_OPENSSL", "openssl")
    tls_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o755)
    (tls_dir / "extensions.cnf").write_text(EXTENSIONS)

    def key(name: str) -> str:
        path = str(tls_dir / name)
        run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", path], check=True)
        os.chmod(path, 0o600)
        return path

    def ca(name: str, cn: str) -> None:
        run([openssl, "req", "-x509", "-new", "-key", key(f"{name}.key"), "-subj", f"/CN={cn}",
             "-days", "5", "-out", str(tls_dir / f"{name}.pem"),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check=True)

    def leaf(name: str, cn: str, section: str) -> None:
        csr = str(tls_dir / f"{name}.csr")
        run([openssl, "req", "-new", "-key", key(f"{name}.key"), "-subj", f"/CN={cn}",
             "-out", csr], check=True)
        run([openssl, "x509", "-req", "-in", csr, "-CA", str(tls_dir / "ca.pem"),
             "-CAkey", str(tls_dir / "ca.key"), "-set_serial", "0x" + secrets.token_hex(16),
             "-days", "5", "-extfile", str(tls_dir / "extensions.cnf"), "-extensions", section,
             "-out", str(tls_dir / f"{name}.pem")], check=True)
        os.unlink(csr)

    info(f"making a CA and certificates in {tls_dir}")
    ca("ca", "smpp-connector stack CA")
    leaf("server", "localhost", "server")
    leaf("client", "smpp-connector", "client")
    ca("other-ca", "unrelated CA")
    return {
        "dir": str(tls_dir),
        "ca": str(tls_dir / "ca.pem"),
        "ca_key": str(tls_dir / "ca.key"),
        "server_cert": str(tls_dir / "server.pem"),
        "server_key": str(tls_dir / "server.key"),
        "client_cert": str(tls_dir / "client.pem"),
        "client_key": str(tls_dir / "client.key"),
        "other_ca": str(tls_dir / "other-ca.pem"),
    }


# ---------------------------------------------------------------------------------------
# The plan: which nodes, their ports and files

def topology_flags(args) -> dict:
    flags = {
        "tls": bool(args.tls),
        "nats_cluster": bool(args.nats_cluster or args.ha),
        "redis": "single",
        "pg_standby": bool(args.pg_standby or args.ha),
    }
    if args.redis_cluster and (args.redis_sentinel or args.ha):
        raise Fail("--redis-cluster and --redis-sentinel (or --ha) exclude each other")
    if args.redis_cluster:
        flags["redis"] = "cluster"
    elif args.redis_sentinel or args.ha:
        flags["redis"] = "sentinel"
    return flags


def describe(flags: dict) -> str:
    parts = []
    if flags["nats_cluster"]:
        parts.append("--nats-cluster")
    if flags["redis"] != "single":
        parts.append(f"--redis-{flags['redis']}")
    if flags["pg_standby"]:
        parts.append("--pg-standby")
    if flags["tls"]:
        parts.append("--tls")
    return " ".join(parts) or "(single servers)"


def plan(flags: dict, dir_: Path, use_free_ports: bool) -> list[dict]:
    # (name, kind, role, default-ports key, index)
    specs: list[tuple[str, str, str, str, int]] = []
    if flags["nats_cluster"]:
        specs += [(f"nats-{i}", "nats", "cluster", "nats", i) for i in range(3)]
    else:
        specs.append(("nats", "nats", "single", "nats", 0))
    if flags["redis"] == "cluster":
        specs += [(f"redis-{i}", "redis", "cluster", "redis-cluster", i) for i in range(3)]
    elif flags["redis"] == "sentinel":
        specs += [("redis-primary", "redis", "primary", "redis-primary", 0),
                  ("redis-replica", "redis", "replica", "redis-replica", 0)]
        specs += [(f"sentinel-{i}", "sentinel", "sentinel", "sentinel", i) for i in range(3)]
    else:
        specs.append(("redis", "redis", "single", "redis", 0))
    if flags["pg_standby"]:
        specs += [("pg-primary", "postgres", "primary", "pg-primary", 0),
                  ("pg-standby", "postgres", "standby", "pg-standby", 0)]
    else:
        specs.append(("pg", "postgres", "single", "pg", 0))

    wanted = []
    for name, kind, role, key, index in specs:
        keys = list(DEFAULT_PORTS[key])
        if kind == "nats" and role == "single":
            keys = ["client", "monitor"]
        wanted.append((name, kind, role, key, index, keys))
    chosen = iter(free_ports(sum(len(w[5]) for w in wanted))) if use_free_ports else None

    nodes = []
    for name, kind, role, key, index, keys in wanted:
        ports = {k: next(chosen) if chosen else DEFAULT_PORTS[key][k] + index for k in keys}
        node = {"name": name, "kind": kind, "role": role, "ports": ports}
        if kind == "postgres":
            # Paths under the PostgreSQL root, filled in by choose_pg_root.
            node.update(pid_file="", data_dir="", log_file="")
        else:
            home = dir_ / "nodes" / name
            node.update(
                pid_file=str(home / f"{name}.pid"),
                data_dir=str(home / "data"),
                log_file=str(home / f"{name}.log"),
            )
        nodes.append(node)
    return nodes


def by_name(topo: dict, name: str) -> dict:
    for node in topo["nodes"]:
        if node["name"] == name:
            return node
    names = " ".join(n["name"] for n in topo["nodes"])
    raise Fail(f"no node '{name}' in this topology (nodes: {names})")


def of_kind(topo: dict, kind: str) -> list[dict]:
    return [n for n in topo["nodes"] if n["kind"] == kind]


def port(node: dict) -> int:
    return node["ports"]["client"]


# ---------------------------------------------------------------------------------------
# NATS

def nats_config(topo: dict, node: dict) -> str:
    q = json.dumps  # NATS config strings: JSON quoting is valid
    lines = [
        f"server_name: {q(node['name'])}",
        f"listen: {q('127.0.0.1:%d' % port(node))}",
        f"http: {q('127.0.0.1:%d' % node['ports']['monitor'])}",
        f"pid_file: {q(node['pid_file'])}",
        f"jetstream {{ store_dir: {q(node['data_dir'])} }}",
    ]
    if node["role"] == "cluster":
        # Routes stay plaintext on loopback (a route presents a certificate as a client, and
        # ours for servers is serverAuth only).
        routes = [q("nats-route://127.0.0.1:%d" % n["ports"]["route"])
                  for n in of_kind(topo, "nats") if n is not node]
        lines += ["cluster {", f"  name: {q(NATS_CLUSTER_NAME)}",
                  f"  listen: {q('127.0.0.1:%d' % node['ports']['route'])}",
                  "  routes: [", *[f"    {r}" for r in routes], "  ]", "}"]
    tls = topo.get("tls")
    if tls:
        # Clients: TLS only, with a certificate signed by the CA (verify: true).
        lines += ["tls {", f"  cert_file: {q(tls['server_cert'])}", f"  key_file: {q(tls['server_key'])}",
                  f"  ca_file: {q(tls['ca'])}", "  verify: true", "  timeout: 2", "}"]
    return "\n".join(lines) + "\n"


def nats_http(node: dict, path: str):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"http://127.0.0.1:{node['ports']['monitor']}{path}"
    try:
        with opener.open(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def nats_ready(node: dict) -> bool:
    if node["role"] == "single":
        return nats_http(node, "/healthz?js-enabled-only=true")[0] == 200
    if nats_http(node, "/healthz")[0] != 200:
        return False
    status, body = nats_http(node, "/jsz")
    return status == 200 and bool((json.loads(body).get("meta_cluster") or {}).get("leader"))


def spawn_nats(topo: dict, node: dict) -> None:
    Path(node["data_dir"]).mkdir(parents=True, exist_ok=True)
    with open(node["log_file"], "ab") as log:
        proc = subprocess.Popen([tool("STACK_NATS_SERVER", "nats-server"), "-c", node["config_file"]],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=node["data_dir"], start_new_session=True)
    pid_file = Path(node["pid_file"])
    if not pid_file.exists():
        pid_file.write_text(f"{proc.pid}\n")


# ---------------------------------------------------------------------------------------
# Redis and Sentinel

def tls_cli_args(topo: dict) -> list[str]:
    tls = topo.get("tls")
    if not tls:
        return []
    return ["--tls", "--cacert", tls["ca"], "--cert", tls["client_cert"], "--key", tls["client_key"]]


def redis_cli(topo: dict, node_or_port, *args: str, timeout: float = 5) -> str:
    p = node_or_port if isinstance(node_or_port, int) else port(node_or_port)
    proc = run([tool("STACK_REDIS_CLI", "redis-cli"), "-h", "127.0.0.1", "-p", str(p)]
               + tls_cli_args(topo) + list(args), timeout=timeout)
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError((out + proc.stderr.decode(errors="replace")).strip() or f"exit {proc.returncode}")
    return out


def pairs(text: str) -> dict[str, str]:
    lines = [line.strip() for line in text.splitlines()]
    return {lines[i]: lines[i + 1] for i in range(0, len(lines) - 1, 2)}


def redis_tls_args(topo: dict, node: dict) -> list[str]:
    tls = topo.get("tls")
    if not tls:
        return ["--port", str(port(node))]
    return ["--port", "0", "--tls-port", str(port(node)),
            "--tls-cert-file", tls["server_cert"], "--tls-key-file", tls["server_key"],
            "--tls-ca-cert-file", tls["ca"], "--tls-auth-clients", "yes",
            # Outgoing connections (replication, cluster bus) present the client certificate:
            # the server certificate is for serverAuth only.
            "--tls-client-cert-file", tls["client_cert"], "--tls-client-key-file", tls["client_key"]]


def redis_argv(topo: dict, node: dict) -> list[str]:
    argv = [tool("STACK_REDIS_SERVER", "redis-server"), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", node["data_dir"],
            "--daemonize", "yes", "--pidfile", node["pid_file"], "--logfile", node["log_file"]]
    argv += redis_tls_args(topo, node)
    tls = bool(topo.get("tls"))
    if node["role"] == "cluster":
        argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-port", str(node["ports"]["bus"]), "--cluster-node-timeout", "5000"]
        if tls:
            argv += ["--tls-cluster", "yes"]
    if node["role"] in ("primary", "replica"):
        # Either may be the primary after a failover. A replica's first sync starts at once
        # (the default waits 5 s for more replicas).
        argv += ["--repl-diskless-sync-delay", "0"]
        if tls:
            argv += ["--tls-replication", "yes"]
        if node["role"] == "replica":
            primary = by_name(topo, "redis-primary")
            argv += ["--replicaof", "127.0.0.1", str(port(primary))]
    return argv


def sentinel_config(topo: dict, node: dict) -> str:
    primary = by_name(topo, "redis-primary")
    lines = ["bind 127.0.0.1", "daemonize yes", f"pidfile {node['pid_file']}",
             f"logfile {node['log_file']}", f"dir {node['data_dir']}"]
    tls = topo.get("tls")
    if tls:
        lines += ["port 0", f"tls-port {port(node)}", f"tls-cert-file {tls['server_cert']}",
                  f"tls-key-file {tls['server_key']}", f"tls-ca-cert-file {tls['ca']}",
                  f"tls-client-cert-file {tls['client_cert']}",
                  f"tls-client-key-file {tls['client_key']}",
                  "tls-auth-clients yes", "tls-replication yes"]
    else:
        lines.append(f"port {port(node)}")
    s = SENTINEL_SERVICE
    lines += ["sentinel resolve-hostnames no",
              f"sentinel monitor {s} 127.0.0.1 {port(primary)} 2",
              f"sentinel down-after-milliseconds {s} 1000",
              f"sentinel failover-timeout {s} 10000",
              f"sentinel parallel-syncs {s} 1"]
    return "\n".join(lines) + "\n"


def spawn_redis(topo: dict, node: dict) -> None:
    Path(node["data_dir"]).mkdir(parents=True, exist_ok=True)
    if node["kind"] == "sentinel":
        argv = [tool("STACK_REDIS_SERVER", "redis-server"), node["config_file"], "--sentinel"]
    else:
        argv = redis_argv(topo, node)
    # Redis writes its log itself once daemonized; what it prints before (bad arguments)
    # goes to the same file.
    proc = run(argv, log=node["log_file"], timeout=TIMEOUT)
    if proc.returncode != 0:
        raise Fail(f"{node['name']}: redis-server failed to start (exit {proc.returncode})",
                   [node["log_file"]])


def redis_ready(topo: dict, node: dict) -> bool:
    if node_pid(node) is None or redis_cli(topo, node, "ping").strip() != "PONG":
        return False
    if node["role"] == "cluster" and topo.get("cluster_created"):
        # Every running node of the cluster sees it whole again: a node that marked this
        # one as failing clears that 2 x cluster-node-timeout (10 s) after marking it.
        return all("cluster_state:ok" in redis_cli(topo, n, "cluster", "info")
                   for n in of_kind(topo, "redis") if node_pid(n) is not None)
    return True


def sentinel_sees_all(topo: dict, node: dict) -> bool:
    master = pairs(redis_cli(topo, node, "sentinel", "master", SENTINEL_SERVICE))
    if master.get("flags") != "master" or int(master.get("num-slaves", 0)) < 1:
        return False
    if int(master.get("num-other-sentinels", 0)) < 2:
        return False
    replica = pairs(redis_cli(topo, node, "sentinel", "replicas", SENTINEL_SERVICE))
    return replica.get("flags") == "slave" and replica.get("master-link-status") == "ok"


# ---------------------------------------------------------------------------------------
# PostgreSQL

def pg_user(topo: dict) -> str:
    return topo["pg_user"]


def choose_pg_root(dir_: Path, user: str) -> Path:
    """DIR/nodes/postgres when the cluster owner can reach it, else a private dir in /tmp
    (e.g. when DIR is under a 0700 home directory). As scripts/stack's choose_pg_root."""
    root = dir_ / "nodes" / "postgres"
    root.mkdir(parents=True, exist_ok=True)
    if not is_root():
        return root
    shutil.chown(root, user, pwd.getpwnam(user).pw_gid)
    os.chmod(root, 0o700)
    if run(["test", "-w", str(root)], as_pg=user).returncode == 0:
        return root
    shutil.rmtree(root, ignore_errors=True)
    digest = hashlib.sha256(str(dir_).encode()).hexdigest()[:12]
    root = Path(f"/tmp/smpp-connector-pg-{digest}-topology")
    info(f"user {user} cannot reach {dir_}: the PostgreSQL clusters live in {root}")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.chown(root, user, pwd.getpwnam(user).pw_gid)
    os.chmod(root, 0o700)
    return root


def give_to_pg(path: Path, user: str, mode: int) -> None:
    if is_root():
        shutil.chown(path, user, pwd.getpwnam(user).pw_gid)
    os.chmod(path, mode)


def pg_copy_tls(topo: dict) -> dict:
    """Copies of the certificates the PostgreSQL user can read, keys 0600 (PostgreSQL and
    libpq refuse a key others can read)."""
    tls, user = topo["tls"], pg_user(topo)
    dest = Path(topo["pg_root"]) / "tls"
    dest.mkdir(exist_ok=True)
    give_to_pg(dest, user, 0o700)
    copies = {}
    for key in ("ca", "server_cert", "server_key", "client_cert", "client_key"):
        target = dest / Path(tls[key]).name
        shutil.copyfile(tls[key], target)
        give_to_pg(target, user, 0o600 if key.endswith("_key") else 0o644)
        copies[key] = str(target)
    return copies


def pg_conninfo(topo: dict, node: dict, dbname: str | None = "postgres", *,
                server_side: bool = False, sslmode: str = "verify-full") -> str:
    """libpq connection string to a node. server_side: with the PostgreSQL user's copies of
    the certificates (for pg_basebackup and primary_conninfo, run as that user)."""
    parts = ["host=127.0.0.1", f"port={port(node)}", f"user={PG_SUPERUSER}", "connect_timeout=3"]
    if dbname:
        parts.append(f"dbname={dbname}")
    if topo.get("tls"):
        files = topo["tls"]["pg"] if server_side else topo["tls"]
        parts += [f"sslmode={sslmode}", f"sslrootcert={files['ca']}",
                  f"sslcert={files['client_cert']}", f"sslkey={files['client_key']}"]
    else:
        parts.append("sslmode=disable")
    return " ".join(parts)


def psql(topo: dict, node: dict, sql: str, dbname: str = "postgres", timeout: float = 10) -> str:
    proc = run([pg_tool("psql"), "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", pg_conninfo(topo, node, dbname),
                "-c", sql], timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode(errors="replace").strip() or f"psql exit {proc.returncode}")
    return proc.stdout.decode().strip()


PG_CONF = """
# --- scripts/stack topology (throwaway cluster) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 300
fsync = on
synchronous_commit = on
full_page_writes = on
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
"""


def pg_init_primary(topo: dict, node: dict) -> None:
    user, data = pg_user(topo), node["data_dir"]
    info(f"creating a PostgreSQL cluster in {data} (owner {user})")
    initdb_log = str(Path(topo["pg_root"]) / f"{node['name']}-initdb.log")
    proc = run([pg_tool("initdb"), "-D", data, "-U", PG_SUPERUSER, "--auth=trust", "-E", "UTF8",
                "--locale=C", "--no-sync"], as_pg=user, timeout=TIMEOUT + 60)
    Path(initdb_log).write_bytes(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise Fail(f"initdb failed (log: {initdb_log})", [initdb_log])
    conf = PG_CONF
    tls = topo.get("tls")
    if tls:
        files = tls["pg"]
        conf += (f"ssl = on\nssl_cert_file = '{files['server_cert']}'\n"
                 f"ssl_key_file = '{files['server_key']}'\nssl_ca_file = '{files['ca']}'\n")
        hba = ("# scripts/stack --tls: TLS only, client certificate signed by the CA\n"
               "hostssl all all 127.0.0.1/32 trust clientcert=verify-ca\n"
               "hostssl replication all 127.0.0.1/32 trust clientcert=verify-ca\n")
    else:
        hba = ("# scripts/stack: loopback only\n"
               "host all all 127.0.0.1/32 trust\n"
               "host replication all 127.0.0.1/32 trust\n")
    # As the owner, so the files keep their owner and mode.
    with open(Path(data) / "postgresql.conf", "a") as f:
        f.write(conf)
    (Path(data) / "pg_hba.conf").write_text(hba)


def pg_start(topo: dict, node: dict) -> None:
    user, log = pg_user(topo), node["log_file"]
    if is_root() and not Path(log).exists():
        Path(log).touch()
        give_to_pg(Path(log), user, 0o600)
    pid_file = Path(node["pid_file"])
    if pid_file.exists() and node_pid(node) is None:
        # Left by a postmaster killed with SIGKILL (kill NODE kills its children too). While
        # its parent has not reaped it, the dead postmaster is a zombie that PostgreSQL's
        # own check (kill(pid, 0)) takes for a live one: it would refuse to start.
        pid_file.unlink()
    ctl_log = str(Path(topo["dir"]) / "nodes" / f"{node['name']}-pg_ctl.log")
    proc = run([pg_tool("pg_ctl"), "-D", node["data_dir"], "-o", f"-p {port(node)}", "-l", log,
                "-w", "-t", str(max(1, int(TIMEOUT))), "start"], as_pg=user, timeout=TIMEOUT + 15, log=ctl_log)
    if proc.returncode != 0:
        raise Fail(f"{node['name']}: PostgreSQL did not start on 127.0.0.1:{port(node)} "
                   f"within {TIMEOUT:.0f}s (log: {log})", [ctl_log, log])


def pg_wait_answers(topo: dict, node: dict) -> None:
    wait_for(f"{node['name']} accepting connections on 127.0.0.1:{port(node)}",
             lambda: psql(topo, node, "SELECT 1") == "1", [node["log_file"]], [node])


def pg_make_standby(topo: dict, primary: dict, standby: dict) -> None:
    user = pg_user(topo)
    info(f"pg_basebackup of {primary['name']} into {standby['data_dir']}")
    conninfo = pg_conninfo(topo, primary, None, server_side=True, sslmode="verify-ca") + \
        f" application_name={STANDBY_NAME}"
    log = str(Path(topo["pg_root"]) / f"{standby['name']}-basebackup.log")
    proc = run([pg_tool("pg_basebackup"), "-d", conninfo, "-D", standby["data_dir"], "-R",
                "-X", "stream", "-c", "fast"], as_pg=user, timeout=TIMEOUT + 60)
    Path(log).write_bytes(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise Fail(f"pg_basebackup failed (log: {log})", [log, primary["log_file"]])
    # -R wrote primary_conninfo (and standby.signal): ours instead, without the defaults -R
    # spells out (application_name names the synchronous standby).
    auto = Path(standby["data_dir"]) / "postgresql.auto.conf"
    kept = [line for line in auto.read_text().splitlines() if not line.startswith("primary_conninfo")]
    escaped = conninfo.replace("'", "''")
    with open(auto, "w") as f:  # truncate and write: the file keeps its owner and mode
        f.write("\n".join(kept + [f"primary_conninfo = '{escaped}'"]) + "\n")


def pg_replication_state(topo: dict, primary: dict) -> str:
    return psql(topo, primary, "SELECT state || ' ' || sync_state FROM pg_stat_replication "
                               f"WHERE application_name = '{STANDBY_NAME}'")


# ---------------------------------------------------------------------------------------
# Starting, stopping, waiting: one node

def spawn(topo: dict, node: dict) -> None:
    check_ports_free(node)
    info(f"starting {node['name']} ({node['kind']}) on 127.0.0.1:{port(node)}")
    if node["kind"] == "nats":
        spawn_nats(topo, node)
    elif node["kind"] in ("redis", "sentinel"):
        spawn_redis(topo, node)
    else:
        pg_start(topo, node)


def wait_answers(topo: dict, node: dict) -> None:
    name = node["name"]
    if node["kind"] == "nats":
        what = f"{name} JetStream ready" + (" with a meta leader" if node["role"] == "cluster" else "")
        wait_for(what, lambda: nats_ready(node), [node["log_file"]], [node])
    elif node["kind"] in ("redis", "sentinel"):
        # daemonized: the pid file appears a moment after redis-server returns
        wait_for(f"{name} answering PING on 127.0.0.1:{port(node)}",
                 lambda: redis_ready(topo, node), [node["log_file"]], [node])
    else:
        pg_wait_answers(topo, node)


def signal_node(node: dict, sig: str) -> list[int]:
    """Send `sig` to the node; for KILL of a PostgreSQL node, to its postmaster and every
    child (a crash of the whole server). The pids that must be gone."""
    pid = node_pid(node)
    if pid is None:
        return []
    targets = [pid]
    if sig == "KILL" and node["kind"] == "postgres":
        targets += children(pid)
    for target in targets:
        try:
            os.kill(target, getattr(signal, f"SIG{sig}"))
        except ProcessLookupError:
            pass
    return targets


def wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(proc_running(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_nodes(topo: dict, nodes: list[dict], grace: float = 10) -> None:
    """Graceful stop of all (PostgreSQL: pg_ctl stop -m fast; others SIGTERM), together;
    SIGKILL what still runs after `grace` seconds."""
    pending: dict[str, list[int]] = {}
    for node in nodes:
        pid = node_pid(node)
        if pid is None:
            continue
        info(f"stopping {node['name']} (pid {pid})")
        if node["kind"] == "postgres":
            run([pg_tool("pg_ctl"), "-D", node["data_dir"], "-m", "fast", "-W", "stop"],
                as_pg=pg_user(topo), timeout=15)
        else:
            signal_node(node, "TERM")
        pending[node["name"]] = [pid]
    deadline = time.monotonic() + grace
    for name, pids in pending.items():
        if not wait_gone(pids, max(0.0, deadline - time.monotonic())):
            node = by_name(topo, name)
            info(f"{name} still running after {grace:.0f}s: SIGKILL")
            wait_gone(signal_node(node, "KILL") or pids, 5)


# ---------------------------------------------------------------------------------------
# The env

def build_env(topo: dict) -> dict[str, str]:
    tls = topo.get("tls")
    nats = of_kind(topo, "nats")
    scheme = "tls" if tls else "nats"
    env = {"NATS_URL": ",".join(f"{scheme}://127.0.0.1:{port(n)}" for n in nats),
           "NATS_MONITOR_URL": f"http://127.0.0.1:{nats[0]['ports']['monitor']}"}
    if topo["flags"]["nats_cluster"]:
        env["NATS_STREAM_REPLICAS"] = "3"

    redis_mode = topo["flags"]["redis"]
    s = "s" if tls else ""
    if redis_mode == "cluster":
        first, *rest = of_kind(topo, "redis")
        nodes = "&".join(f"node=127.0.0.1:{port(n)}" for n in rest)
        env["REDIS_URL"] = f"redis{s}-cluster://127.0.0.1:{port(first)}?{nodes}"
    elif redis_mode == "sentinel":
        first, *rest = of_kind(topo, "sentinel")
        nodes = "&".join(f"node=127.0.0.1:{port(n)}" for n in rest)
        env["REDIS_URL"] = (f"redis{s}-sentinel://127.0.0.1:{port(first)}/0?{nodes}"
                            f"&sentinelServiceName={SENTINEL_SERVICE}")
    else:
        env["REDIS_URL"] = f"redis{s}://127.0.0.1:{port(by_name(topo, 'redis'))}/0"

    pgs = of_kind(topo, "postgres")
    hosts = ",".join(f"127.0.0.1:{port(n)}" for n in pgs)
    params = []
    if len(pgs) > 1:
        params.append("target_session_attrs=read-write")
    if tls:
        params += ["sslmode=verify-full", f"sslrootcert={tls['ca']}", f"sslcert={tls['client_cert']}",
                   f"sslkey={tls['client_key']}"]
    else:
        params.append("sslmode=disable")
    env["DATABASE_URL"] = f"postgres://{PG_SUPERUSER}@{hosts}/{PG_DATABASE}?" + "&".join(params)

    if tls:
        for prefix in ("NATS", "REDIS"):
            env[f"{prefix}_TLS_CA_FILE"] = tls["ca"]
            env[f"{prefix}_TLS_CERT_FILE"] = tls["client_cert"]
            env[f"{prefix}_TLS_KEY_FILE"] = tls["client_key"]
        env["STACK_TLS_OTHER_CA"] = tls["other_ca"]
    env.update(PGHOST="127.0.0.1", PGPORT=str(port(pgs[0])), PGUSER=PG_SUPERUSER,
               PGDATABASE=PG_DATABASE, SMPP_STACK_DIR=topo["dir"])
    if tls:
        env.update(PGSSLMODE="verify-full", PGSSLROOTCERT=tls["ca"], PGSSLCERT=tls["client_cert"],
                   PGSSLKEY=tls["client_key"])
    return env


def env_text(topo: dict) -> str:
    lines = [f"# Written by scripts/stack up {describe(topo['flags'])}. Use: source {topo['dir']}/env"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in topo["env"].items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# topology.json

def json_path(dir_: Path) -> Path:
    return dir_ / "topology.json"


def load(dir_: Path) -> dict:
    try:
        return json.loads(json_path(dir_).read_text())
    except FileNotFoundError:
        raise Fail(f"no topology in {dir_} ({json_path(dir_)} missing)") from None
    except json.JSONDecodeError as e:
        raise Fail(f"{json_path(dir_)} is not JSON: {e}") from None


def save(topo: dict) -> None:
    path = json_path(Path(topo["dir"]))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(topo, indent=2) + "\n")
    tmp.replace(path)


def write_env(topo: dict) -> None:
    path = Path(topo["dir"]) / "env"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(env_text(topo))
    tmp.replace(path)


def running(topo: dict) -> list[dict]:
    return [n for n in topo["nodes"] if node_pid(n) is not None]


def purge_data(dir_: Path, topo: dict | None) -> None:
    shutil.rmtree(dir_ / "nodes", ignore_errors=True)
    shutil.rmtree(dir_ / "tls", ignore_errors=True)
    if topo and str(topo.get("pg_root", "")).startswith("/tmp/smpp-connector-pg-"):
        shutil.rmtree(topo["pg_root"], ignore_errors=True)
    for name in ("topology.json", "topology.json.tmp", "env"):
        try:
            (dir_ / name).unlink()
        except FileNotFoundError:
            pass


def plain_stack_running(dir_: Path) -> bool:
    """scripts/stack up without flags runs in this DIR (its state file and pid files)."""
    state = {}
    try:
        for line in (dir_ / "state").read_text().splitlines():
            key, _, value = line.partition("=")
            state[key] = value
    except FileNotFoundError:
        return False
    checks = [(dir_ / "nats.pid", "nats-server"), (dir_ / "redis.pid", "redis-server")]
    if state.get("PG_ROOT"):
        checks.append((Path(state["PG_ROOT"]) / "data" / "postmaster.pid", "postgres"))
    for pid_file, name in checks:
        pid = read_pid(str(pid_file))
        if pid and proc_running(pid) and name in cmdline(pid):
            return True
    return False


# ---------------------------------------------------------------------------------------
# Commands

def cmd_up(args) -> None:
    dir_ = Path(args.dir)
    flags = topology_flags(args)
    dir_.mkdir(parents=True, exist_ok=True)
    if json_path(dir_).exists():
        old = load(dir_)
        alive = running(old)
        if alive and old["flags"] == flags:
            missing = [n for n in old["nodes"] if n not in alive]
            if not missing:
                info(f"already up: {describe(flags)} ({dir_})")
                sys.stdout.write(env_text(old))
                return
            for node in missing:
                spawn(old, node)
                wait_answers(old, node)
            write_env(old)
            info(f"up again: started {' '.join(n['name'] for n in missing)}")
            sys.stdout.write(env_text(old))
            return
        if alive:
            raise Fail(f"{dir_} runs another topology ({describe(old['flags'])}; "
                       f"{' '.join(n['name'] for n in alive)} running): "
                       f"scripts/stack down --dir {dir_} first")
        purge_data(dir_, old)
    if plain_stack_running(dir_):
        raise Fail(f"{dir_} runs the plain stack (scripts/stack up without flags): "
                   f"scripts/stack down --dir {dir_} first")
    purge_data(dir_, None)

    started = time.monotonic()
    user = os.environ.get("STACK_PG_USER") or pwd.getpwuid(os.geteuid()).pw_name
    topo = {"version": 1, "dir": str(dir_), "flags": flags, "free_ports": bool(args.free_ports),
            "pg_user": user, "pg_root": "", "tls": None,
            "nodes": plan(flags, dir_, args.free_ports), "env": {}}
    for node in topo["nodes"]:
        check_ports_free(node)
        if node["kind"] != "postgres":
            Path(node["data_dir"]).mkdir(parents=True, exist_ok=True)
    pg_root = choose_pg_root(dir_, user)
    topo["pg_root"] = str(pg_root)
    for node in of_kind(topo, "postgres"):
        node.update(data_dir=str(pg_root / node["name"]), log_file=str(pg_root / f"{node['name']}.log"),
                    pid_file=str(pg_root / node["name"] / "postmaster.pid"))
    if flags["tls"]:
        topo["tls"] = make_pki(dir_ / "tls")
        topo["tls"]["pg"] = pg_copy_tls(topo)
    for node in topo["nodes"]:
        if node["kind"] == "nats":
            node["config_file"] = str(Path(node["data_dir"]).parent / "nats.conf")
            Path(node["config_file"]).write_text(nats_config(topo, node))
        elif node["kind"] == "sentinel":
            node["config_file"] = str(Path(node["data_dir"]).parent / "sentinel.conf")
        elif node["kind"] == "redis":
            node["argv"] = redis_argv(topo, node)
    topo["env"] = build_env(topo)
    save(topo)

    try:
        bring_up(topo)
    except BaseException:
        info("up failed: stopping what was started (logs and data kept)")
        try:
            stop_nodes(topo, list(reversed(topo["nodes"])), grace=5)
        except Exception as e:  # noqa: BLE001
            info(f"stopping failed too: {e}")
        raise
    write_env(topo)
    took = time.monotonic() - started
    summary = ", ".join(f"{n['name']} :{port(n)}" for n in topo["nodes"])
    info(f"up in {took:.1f}s: {describe(flags)}: {summary} (logs in {dir_}/nodes, {pg_root})")
    sys.stdout.write(env_text(topo))


def bring_up(topo: dict) -> None:
    flags = topo["flags"]
    nats = of_kind(topo, "nats")
    redis = of_kind(topo, "redis")
    sentinels = of_kind(topo, "sentinel")
    pgs = of_kind(topo, "postgres")

    # Spawn what needs nothing else first, so that they start while PostgreSQL initialises.
    for node in nats + redis:
        spawn(topo, node)

    primary = pgs[0]
    pg_init_primary(topo, primary)
    spawn(topo, primary)
    pg_wait_answers(topo, primary)
    psql(topo, primary, f"CREATE DATABASE {PG_DATABASE}")
    if flags["pg_standby"]:
        standby = pgs[1]
        pg_make_standby(topo, primary, standby)
        spawn(topo, standby)
        # The primary waits for standby1 from now on (the standby's copy of the
        # configuration has no synchronous_standby_names: once promoted, it accepts writes).
        with open(Path(primary["data_dir"]) / "postgresql.conf", "a") as f:
            f.write(f"synchronous_standby_names = '{STANDBY_NAME}'\n")
        run([pg_tool("pg_ctl"), "-D", primary["data_dir"], "reload"], as_pg=pg_user(topo), check=True)
        pg_wait_answers(topo, standby)
        wait_for("pg-standby streaming as the synchronous standby (pg_stat_replication on pg-primary)",
                 lambda: pg_replication_state(topo, primary) == "streaming sync",
                 [standby["log_file"], primary["log_file"]], [primary, standby])

    for node in redis:
        wait_answers(topo, node)
    if flags["redis"] == "cluster":
        info("redis-cli --cluster create (3 primaries, no replicas)")
        run([tool("STACK_REDIS_CLI", "redis-cli")] + tls_cli_args(topo)
            + ["--cluster", "create"] + [f"127.0.0.1:{port(n)}" for n in redis]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            timeout=TIMEOUT, check=True, log=str(Path(topo["dir"]) / "nodes" / "cluster-create.log"))
        topo["cluster_created"] = True
        save(topo)
        for node in redis:
            wait_for(f"{node['name']} cluster_state:ok",
                     lambda node=node: "cluster_state:ok" in redis_cli(topo, node, "cluster", "info"),
                     [node["log_file"]], [node])
    if flags["redis"] == "sentinel":
        replica = by_name(topo, "redis-replica")
        wait_for("redis-replica in sync with redis-primary (master_link_status:up)",
                 lambda: "master_link_status:up" in redis_cli(topo, replica, "info", "replication"),
                 [replica["log_file"], by_name(topo, "redis-primary")["log_file"]], [replica])
        for node in sentinels:
            Path(node["data_dir"]).mkdir(parents=True, exist_ok=True)
            Path(node["config_file"]).write_text(sentinel_config(topo, node))
            spawn(topo, node)
        for node in sentinels:
            wait_answers(topo, node)
        for node in sentinels:
            wait_for(f"{node['name']} seeing the primary, the replica and the two other sentinels",
                     lambda node=node: sentinel_sees_all(topo, node), [node["log_file"]], [node])

    for node in nats:
        wait_answers(topo, node)


def cmd_down(args) -> None:
    dir_ = Path(args.dir)
    topo = load(dir_)
    order = of_kind(topo, "sentinel") + of_kind(topo, "redis") + of_kind(topo, "nats") \
        + list(reversed(of_kind(topo, "postgres")))
    stop_nodes(topo, order)
    if args.purge:
        info(f"purging the topology's data in {dir_}")
        purge_data(dir_, topo)
    else:
        try:
            (dir_ / "env").unlink()
        except FileNotFoundError:
            pass


def role_of(topo: dict, node: dict) -> str:
    """The node's role now (best effort): Redis ROLE, pg_is_in_recovery."""
    try:
        if node["kind"] == "redis" and node["role"] in ("primary", "replica"):
            return {"master": "primary", "slave": "replica"}.get(
                redis_cli(topo, node, "role", timeout=2).split("\n", 1)[0].strip(), "?")
        if node["kind"] == "postgres" and node["role"] != "single":
            return "standby" if psql(topo, node, "SELECT pg_is_in_recovery()", timeout=3) == "t" else "primary"
    except Exception:  # noqa: BLE001
        return "?"
    return node["role"]


def cmd_status(args) -> int:
    topo = load(Path(args.dir))
    down = 0
    tls = bool(topo.get("tls"))
    width = max(len(n["name"]) for n in topo["nodes"])
    for node in topo["nodes"]:
        pid = node_pid(node)
        name = node["name"].ljust(width)
        if pid is None:
            print(f"{name}  stopped  {node['kind']} 127.0.0.1:{port(node)}  log {node['log_file']}")
            down = 1
            continue
        kind = node["kind"]
        if kind == "nats":
            where = f"{'tls' if tls else 'nats'}://127.0.0.1:{port(node)} (monitor http://127.0.0.1:{node['ports']['monitor']})"
        elif kind in ("redis", "sentinel"):
            where = f"{'rediss' if tls else 'redis'}://127.0.0.1:{port(node)}"
        else:
            where = f"postgres://{PG_SUPERUSER}@127.0.0.1:{port(node)}/{PG_DATABASE}"
        print(f"{name}  running  pid {pid:<7} {kind} ({role_of(topo, node)})  {where}  log {node['log_file']}")
    return 3 if down else 0


def cmd_kill(args) -> None:
    topo = load(Path(args.dir))
    node = by_name(topo, args.node)
    sig = args.signal.upper().removeprefix("SIG")
    if sig not in ("KILL", "TERM", "QUIT"):
        raise Fail(f"--signal must be KILL, TERM or QUIT, not {args.signal}")
    pids = signal_node(node, sig)
    if not pids:
        info(f"{node['name']} is not running")
        return
    info(f"SIG{sig} to {node['name']} (pid {' '.join(map(str, pids))})")
    if not wait_gone(pids, TIMEOUT):
        raise Fail(f"{node['name']} still runs {TIMEOUT:.0f}s after SIG{sig}", [node["log_file"]])


def cmd_start(args) -> None:
    topo = load(Path(args.dir))
    node = by_name(topo, args.node)
    if node_pid(node) is not None:
        info(f"{node['name']} is already running")
    else:
        spawn(topo, node)
    wait_answers(topo, node)
    info(f"{node['name']} answers on 127.0.0.1:{port(node)}")


def cmd_promote(args) -> None:
    topo = load(Path(args.dir))
    if not topo["flags"]["pg_standby"]:
        raise Fail("this topology has no PostgreSQL standby (up --pg-standby or --ha)")
    standby = by_name(topo, "pg-standby")
    if node_pid(standby) is None:
        raise Fail("pg-standby is not running (scripts/stack start pg-standby)")
    if psql(topo, standby, "SELECT pg_is_in_recovery()") == "f":
        info("pg-standby is already a primary")
        return
    started = time.monotonic()
    info("pg_ctl promote pg-standby")
    proc = run([pg_tool("pg_ctl"), "-D", standby["data_dir"], "-w", "-t", str(max(1, int(TIMEOUT))), "promote"],
               as_pg=pg_user(topo), timeout=TIMEOUT + 15)
    if proc.returncode != 0:
        raise Fail(f"pg_ctl promote failed: {(proc.stdout + proc.stderr).decode(errors='replace').strip()}",
                   [standby["log_file"]])
    wait_for("pg-standby out of recovery", lambda: psql(topo, standby, "SELECT pg_is_in_recovery()") == "f",
             [standby["log_file"]], [standby])
    # A write transaction (an xid): the promoted server accepts writes.
    wait_for("pg-standby accepting writes", lambda: psql(topo, standby, "SELECT txid_current()"),
             [standby["log_file"]], [standby])
    info(f"pg-standby promoted: accepts writes on 127.0.0.1:{port(standby)} "
         f"({time.monotonic() - started:.1f}s)")


def cmd_retire(args) -> None:
    dir_ = Path(args.dir)
    if not json_path(dir_).exists():
        return
    topo = load(dir_)
    alive = running(topo)
    if alive:
        raise Fail(f"{dir_} runs a topology ({describe(topo['flags'])}; "
                   f"{' '.join(n['name'] for n in alive)} running): scripts/stack down --dir {dir_} first")
    info(f"removing the stopped topology's data in {dir_}")
    purge_data(dir_, topo)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="topology.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "kill", "start", "promote", "retire"])
    parser.add_argument("node", nargs="?")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--free-ports", action="store_true")
    parser.add_argument("--purge", action="store_true")
    parser.add_argument("--signal", default="KILL")
    for flag in ("tls", "nats-cluster", "redis-cluster", "redis-sentinel", "pg-standby", "ha"):
        parser.add_argument(f"--{flag}", action="store_true")
    args = parser.parse_args(argv)
    args.dir = os.path.abspath(args.dir)
    if args.command in ("kill", "start") and not args.node:
        parser.error(f"{args.command} needs a NODE")
    try:
        handler = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "kill": cmd_kill,
                   "start": cmd_start, "promote": cmd_promote, "retire": cmd_retire}[args.command]
        return handler(args) or 0
    except Fail as e:
        for log in e.logs:
            tail_log(log)
        print(f"stack: error: {e}", file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as e:
        print(f"stack: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
