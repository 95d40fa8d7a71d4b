#!/usr/bin/env python3
"""Deployment checks: the Helm chart, its alerts and dashboard, and the Dockerfile.

Run through scripts/check-deploy (which provides the venv with the pinned packages of
scripts/deploy-requirements.txt). No cluster, no docker, no helm binary:

  a. helm lint and render with helm-python-sdk (Helm's own Go library through its C ABI),
     for the default values and ci/values-one-mno.yaml, ci/values-three-mnos.yaml,
     ci/values-backends-tls.yaml (clustered backends over TLS), plus
     renders the chart must refuse (bad direction, lanes, unknown keys, a grace period
     below the drain time, ...) and one more feature render;
  b. every rendered object of a built-in kind validated by kubernetes-validate --strict for
     the oldest and newest Kubernetes versions the chart supports (KUBE_VERSIONS);
  c. the CRD objects (ServiceMonitor, PrometheusRule) asserted on: the 8 alerts with
     their runbook_url (the runbook files exist in docs/runbooks/), `for`, severity, the
     rules of files/alerts.yaml passed through verbatim, the ServiceMonitor selecting every
     Service by a port they have;
  d. structural assertions on every render (one Deployment per MNO x direction, replicas,
     anti-affinity, PDB, probes, grace period above the drain time, security context,
     secrets only referenced, certificate Secrets mounted read-only (0440 at most) where the
     *_FILE variables point, NetworkPolicy egress/ingress equal to the values (CIDRs,
     selectors, port ranges), egress IP pool, the dashboard ConfigMap's JSON);
  e. the Dockerfile: stages, pinned base images, non-root USER, the binary it builds and
     runs is the workspace's;
  plus: every smpp_* name in alerts.yaml and dashboard.json is a metric of
  actors/src/telemetry/metric.rs (histograms as _bucket/_sum/_count), every service
  variable (README "Configuration", src/config.rs) is settable through the chart, and
  every chart value is in the chart README's table and in values.schema.json.

Prints one line per check ("ok" / "FAIL" with the reasons), then "N passed, N failed";
exits 1 when any check failed. --metrics-out PATH writes the smpp_* names used by the
alerts and the dashboard, one per line.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import shlex
import sys
import tomllib
import traceback
from pathlib import Path
from typing import Any, Callable

import dockerfile
import helm_python as helm
import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "smpp-connector"
CI_VALUES = ("ci/values-one-mno.yaml", "ci/values-three-mnos.yaml", "ci/values-backends-tls.yaml")
RELEASE = "smpp-connector"
NAMESPACE = "sms"

# Oldest and newest Kubernetes the chart supports, both bundled by kubernetes-validate:
# 1.27 is the first where PodDisruptionBudget.unhealthyPodEvictionPolicy is on by default.
KUBE_VERSIONS = ("1.27", "1.37")

BUILTIN_KINDS = {
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ConfigMap",
    "ServiceAccount",
}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}

# alert -> (runbook file, `for`, fragments its expr must contain)
ALERTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "SmppConnectorSessionUnbound": (
        "session-down.md",
        "2m",
        ("max by (mno, direction, bindId)", "smpp_connector_bind_up", "== 0"),
    ),
    "SmppMnoBindAllUnbound": (
        "mno-all-binds-down.md",
        "1m",
        (
            "sum by (mno, direction)",
            'smpp_connector_sessions_total{state=~"BOUND|HALF_CLOSED_TX|DRAINING"}',
            "== 0",
        ),
    ),
    "SmppBindOrphan": (
        "bind-orphaned.md",
        "5m",
        ("increase(smpp_bind_orphan_total[10m])", "> 0"),
    ),
    "SmppConcatBufferLeak": (
        "concat-buffer-leak.md",
        None,
        ("smpp_concat_buffer_size", "[30m", "increase(smpp_concat_lost_total[1h])"),
    ),
    "SmppTpsBreach": (
        "tps-breach.md",
        "2m",
        (
            "sum by (mno) (rate(smpp_connector_submit_total[1m]))",
            "max by (mno)",
            "smpp_connector_tps_limit",
            "1.05",
        ),
    ),
    "SmppRedisFailOpen": (
        "redis-fail-open.md",
        "1m",
        ("max by (mno) (smpp_connector_tps_fail_open) == 1",),
    ),
    "SmppBackendDown": (
        "backend-down.md",
        "2m",
        ("min by (backend, pod) (smpp_connector_backend_up) == 0",),
    ),
    "SmppBindDrainStuck": (
        "drain-stuck.md",
        None,
        ("smpp_connector_drain_seconds", "> 300"),
    ),
}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations", "runbook"}
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# Helm template syntax that must not appear in files/alerts.yaml (Prometheus' own
# {{ $labels.x }} / {{ $value }} are fine).
HELM_SYNTAX = re.compile(
    r"\{\{-?[^}]*(\.(Values|Release|Chart|Files|Capabilities|Template)\b"
    r"|\b(include|tpl|required|toYaml|nindent|indent|quote)\b)"
)

# Dashboard: panels the issue asks for, by the metric each must query.
DASHBOARD_METRICS = (
    "smpp_connector_bind_state",
    "smpp_connector_bind_up",
    "smpp_bind_owner",
    "smpp_connector_lane_pending",
    "smpp_connector_submit_total",
    "smpp_connector_tps_limit",
    "smpp_connector_submit_latency_seconds_bucket",
    "smpp_connector_submit_to_receipt_seconds_bucket",
    "smpp_response_status_total",
    "smpp_connector_egress_bytes_total",
    "smpp_connector_actor_restarts_total",
    "smpp_connector_backend_up",
    "smpp_connector_actor_handle_seconds_bucket",
    "smpp_connector_actor_uptime_seconds",
)

# Variables the chart sets itself; everything else goes through `config`.
WIRED_ENV = {
    "MNO_ID",
    "OPERATOR_IDS",
    "BIND_DIRECTION",
    "LANES",
    "POD_NAME",
    "NATS_URL",
    "NATS_CREDS",
    "NATS_TLS_CA_FILE",
    "NATS_TLS_CERT_FILE",
    "NATS_TLS_KEY_FILE",
    "NATS_STREAM_REPLICAS",
    "REDIS_URL",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
    "DATABASE_URL",
    "OMS_BASE_URL",
    "OMS_CA_FILE",
    "OMS_CERT_FILE",
    "OMS_KEY_FILE",
    "SMPP_TLS_CA_FILE",
    "SMPP_TLS_CERT_FILE",
    "SMPP_TLS_KEY_FILE",
    "ADMIN_TOKEN",
    "HTTP_PORT",
    "ADMIN_PORT",
}
# Never a plain `value` in a rendered manifest.
SECRET_ENV = {"ADMIN_TOKEN", "DATABASE_URL"}
SECRETISH = re.compile(r"TOKEN|PASSWORD|SECRET|PASSWD", re.IGNORECASE)
UID = 10001
# Where the chart mounts each backend's TLS Secret (the database's files are named in
# DATABASE_URL, not by a variable).
TLS_DIRS = {"nats": "/etc/smpp-connector/nats-tls", "redis": "/etc/smpp-connector/redis-tls", "database": "/etc/smpp-connector/database-tls"}
POOL_KEY = "smpp-connector/egress-ip-pool"


# ---------------------------------------------------------------------------------------
# Reporting


class Problems(list):
    """Reasons one check failed; `expect(cond, msg)` adds msg when cond is false."""

    def expect(self, cond: Any, msg: str) -> bool:
        if not cond:
            self.append(msg)
        return bool(cond)


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, fn: Callable[[Problems], None]) -> None:
        problems = Problems()
        try:
            fn(problems)
        except Exception as exc:  # a crash of a check is its failure, with the reason
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            problems.append(f"error: {detail}")
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems[:40]:
                for i, line in enumerate(str(p).splitlines() or [""]):
                    print(("       - " if i == 0 else "         ") + line)
            if len(problems) > 40:
                print(f"       ... and {len(problems) - 40} more")
        else:
            self.passed += 1
            print(f"ok   {name}")
        sys.stdout.flush()


# ---------------------------------------------------------------------------------------
# Helpers


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def parse_manifests(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for source, text in sorted(rendered.items()):
        if source.endswith("NOTES.txt") or not text.strip():
            continue
        for doc in yaml.safe_load_all(text):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise ValueError(f"{source}: a document that is not a mapping: {doc!r}")
            doc.setdefault("__source__", source)
            docs.append(doc)
    return docs


def strip_source(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "__source__"}


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def cidr(ip: str) -> str:
    if "/" in ip:
        return ip
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


def env_text(value: Any) -> str:
    """A config value as the chart renders it into an environment variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def names_in(text: str) -> set[str]:
    """Every smpp_* name in text, as the Rust observability test reads it."""
    return set(re.findall(r"(?<![A-Za-z0-9_])smpp_[a-z0-9_]*", text))


def declared_metrics() -> tuple[set[str], set[str]]:
    """(every metric name, the histogram ones) of actors/src/telemetry/metric.rs."""
    source = (ROOT / "actors/src/telemetry/metric.rs").read_text(encoding="utf-8")
    consts = dict(re.findall(r'pub const ([A-Z0-9_]+): &str = "([^"]+)";', source))
    histograms = {consts[c] for c in re.findall(r"describe_histogram!\(\s*([A-Z0-9_]+)", source) if c in consts}
    return set(consts.values()), histograms


def exported_names(declared: set[str], histograms: set[str]) -> set[str]:
    out = set(declared - histograms)
    for h in histograms:
        out |= {f"{h}_bucket", f"{h}_sum", f"{h}_count"}
    return out


def service_variables() -> tuple[set[str], set[str]]:
    """(variables a deployment must be able to set, every variable name mentioned) from the
    README's Configuration table and src/config.rs's env module."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Configuration\n(.*?)(?=^## )", readme, re.S | re.M)
    required: set[str] = set()
    mentioned: set[str] = set()
    if m:
        for line in m.group(1).splitlines():
            if not line.startswith("|"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not cells or set(cells[0]) <= {"-", " "} or cells[0] == "variable":
                continue
            required |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]))
            mentioned |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line))
    config_rs = (ROOT / "src/config.rs").read_text(encoding="utf-8")
    env_mod = re.search(r"pub mod env \{(.*?)\n\}", config_rs, re.S)
    if env_mod:
        required |= set(re.findall(r'pub const ([A-Z0-9_]+): &str = "\1";', env_mod.group(1)))
    mentioned |= required
    return required, mentioned


def effective(chart: helm.Chart, values: dict | None) -> dict:
    return chart.merge_values(copy.deepcopy(values) if values else None)


def expected_units(v: dict) -> list[dict]:
    """One unit per (MNO x direction) from the merged values, as the chart should render."""
    by_id = {m["id"]: m for m in v.get("mnos") or []}
    units = []
    for m in v.get("mnos") or []:
        name = m.get("name") or m["id"]
        endpoints = [(cidr(e["ip"]), int(e["port"])) for e in m["smppEndpoints"]]
        for b in m.get("backupMnos") or []:
            endpoints += [(cidr(e["ip"]), int(e["port"])) for e in by_id[b]["smppEndpoints"]]
        smpp_tls = {**(v.get("smppTls") or {}), **(m.get("smppTls") or {})}
        for d in m["directions"]:
            cfg = {**(v.get("config") or {}), **(m.get("config") or {}), **(d.get("config") or {})}
            grace = d.get("terminationGracePeriodSeconds", m.get("terminationGracePeriodSeconds", v["terminationGracePeriodSeconds"]))
            units.append(
                {
                    "name": f"smpp-connector-{name}-{d['direction']}",
                    "mno": m,
                    "mnoName": name,
                    "direction": d["direction"],
                    "lanes": d.get("lanes"),
                    "replicas": d.get("replicas", v["replicas"]),
                    "config": cfg,
                    "grace": grace,
                    "endpoints": endpoints,
                    "resources": d.get("resources") or v["resources"],
                    "smppTls": smpp_tls,
                }
            )
    return units


def mounted_file(pod: dict, container: dict, path: str) -> tuple[dict, str] | None:
    """(secret volume source, key) that provides the file at `path`, if any."""
    volumes = {vol["name"]: vol for vol in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        prefix = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix):
            vol = volumes.get(mount["name"], {})
            secret = vol.get("secret")
            if not secret:
                return None
            rel = path[len(prefix):]
            for item in secret.get("items", []):
                if item["path"] == rel:
                    return secret, item["key"]
            if not secret.get("items"):
                return secret, rel
    return None


def promql_balanced(expr: str) -> bool:
    depth = {"(": 0, "[": 0, "{": 0}
    close = {")": "(", "]": "[", "}": "{"}
    in_str = None
    for ch in expr:
        if in_str:
            if ch == in_str:
                in_str = None
            continue
        if ch in "\"'`":
            in_str = ch
        elif ch in depth:
            depth[ch] += 1
        elif ch in close:
            depth[close[ch]] -= 1
            if depth[close[ch]] < 0:
                return False
    return in_str is None and all(n == 0 for n in depth.values())


# ---------------------------------------------------------------------------------------
# a. lint, schema, render


class Renders:
    """Values name -> (values, effective values, parsed documents)."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[dict | None, dict, list[dict]]] = {}


def check_lint(problems: Problems) -> None:
    for label in ("default values",) + CI_VALUES:
        values = None if label == "default values" else load_yaml(CHART / label)
        for kube in (None,) + KUBE_VERSIONS:
            kwargs = {"kube_version": f"v{kube}.0"} if kube else {}
            report = helm.lint(str(CHART), values, namespace=NAMESPACE, **kwargs)
            where = f"{label}" + (f", Kubernetes {kube}" if kube else "")
            problems.expect(report.get("total_charts_linted") == 1, f"{where}: lint linted {report.get('total_charts_linted')} charts")
            for err in report.get("errors") or []:
                problems.append(f"{where}: {err}")
            for msg in report.get("messages") or []:
                # 1 = info (e.g. "icon is recommended"); warnings and errors fail.
                if msg.get("severity", 0) >= 2:
                    problems.append(f"{where}: [{msg.get('path')}] {msg.get('error')}")


def make_render_check(chart: helm.Chart, renders: Renders, label: str, values: dict | None) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        chart.validate_schema(copy.deepcopy(values) if values else None)
        rendered = chart.render(copy.deepcopy(values) if values else None, name=RELEASE, namespace=NAMESPACE)
        docs = parse_manifests(rendered)
        for d in docs:
            problems.expect(
                d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name"),
                f"{d['__source__']}: an object without apiVersion/kind/metadata.name",
            )
            problems.expect(
                (d.get("metadata") or {}).get("namespace") == NAMESPACE,
                f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}: namespace is not the release's",
            )
        keys = [(d.get("kind"), d["metadata"]["name"]) for d in docs]
        dup = {k for k in keys if keys.count(k) > 1}
        problems.expect(not dup, f"objects rendered twice: {sorted(dup)}")
        renders.items[label] = (values, effective(chart, values), docs)
        counts: dict[str, int] = {}
        for d in docs:
            counts[d["kind"]] = counts.get(d["kind"], 0) + 1
        print(f"       rendered {label}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))

    return check


def check_refusals(chart: helm.Chart, one: dict) -> Callable[[Problems], None]:
    """Values the chart must refuse, each with the words its error must contain."""

    def mutate(fn: Callable[[dict], None]) -> dict:
        v = copy.deepcopy(one)
        fn(v)
        return v

    def first_dir(v: dict) -> dict:
        return v["mnos"][0]["directions"][0]

    cases = [
        ("direction outside trx|tx|rx", mutate(lambda v: first_dir(v).update(direction="txrx")), "direction"),
        ("lane outside P0..P3", mutate(lambda v: first_dir(v).update(lanes=["P0", "P4"])), "lanes"),
        ("unknown top-level value", mutate(lambda v: v.update(replicaCount=3)), "replicaCount"),
        ("unknown MNO field", mutate(lambda v: v["mnos"][0].update(ip="203.0.113.1")), "ip"),
        ("unknown service variable in config", mutate(lambda v: v.update(config={"DRAIN_TIMEOUT": 5})), "DRAIN_TIMEOUT"),
        ("ADMIN_TOKEN inlined through extraEnv", mutate(lambda v: v.update(extraEnv=[{"name": "ADMIN_TOKEN", "value": "0123456789abcdef"}])), "extraEnv"),
        ("operator id with a dot", mutate(lambda v: v["mnos"][0].update(id="aw.cc")), "id"),
        (
            "grace period not above the drain time",
            mutate(lambda v: v.update(config={"DRAIN_TIMEOUT_MS": 60000})),
            "terminationGracePeriodSeconds",
        ),
        (
            "grace period not above the drain time plus preStop",
            mutate(lambda v: v.update(preStopSleepSeconds=20)),
            "terminationGracePeriodSeconds",
        ),
        ("BIND_OWNERSHIP=off with 2 replicas", mutate(lambda v: v.update(config={"BIND_OWNERSHIP": "off"})), "BIND_OWNERSHIP"),
        ("direction listed twice", mutate(lambda v: v["mnos"][0]["directions"].append({"direction": "trx"})), "twice"),
        ("unknown backup MNO", mutate(lambda v: v["mnos"][0].update(backupMnos=["nobody"])), "backupMnos"),
        ("id unusable as a Kubernetes name", mutate(lambda v: v["mnos"][0].update(id="AWCC_1")), "name"),
        ("no DATABASE_URL secret", mutate(lambda v: v["database"]["urlSecret"].update(name="")), "database.urlSecret.name"),
        ("NetworkPolicy without NATS CIDRs", mutate(lambda v: v["networkPolicy"]["egress"]["nats"].update(cidrs=[])), "nats"),
        (
            "NetworkPolicy destination without peers",
            mutate(lambda v: v["networkPolicy"]["egress"]["redis"].update(destinations=[{"namespaceSelector": {}, "ports": [26379]}])),
            "destinations[0]",
        ),
        (
            "NetworkPolicy port range ending before it starts",
            mutate(lambda v: v["networkPolicy"]["egress"]["redis"].update(ports=["7005-7000"])),
            "7005-7000",
        ),
        ("NetworkPolicy port as a string", mutate(lambda v: v["networkPolicy"]["egress"]["redis"].update(ports=["6379"])), "ports"),
        ("NATS_STREAM_REPLICAS above 5", mutate(lambda v: v["nats"].update(streamReplicas=7)), "streamReplicas"),
        ("NATS_URL list with a bad scheme", mutate(lambda v: v["nats"].update(url="nats://a:4222,http://b:4222")), "url"),
        ("nats.tls without its Secret", mutate(lambda v: v["nats"].update(tls={"enabled": True})), "nats.tls.secretName"),
        ("database.tls without its Secret", mutate(lambda v: v["database"].update(tls={"enabled": True})), "database.tls.secretName"),
        (
            "redis.tls beside a plaintext REDIS_URL",
            mutate(lambda v: v["redis"].update(url="redis-sentinel://s1:26379/0?sentinelServiceName=smpp", tls={"enabled": True, "secretName": "redis-ca"})),
            "rediss",
        ),
        ("unknown key of a TLS block", mutate(lambda v: v["database"].update(tls={"sslmode": "verify-full"})), "sslmode"),
    ]

    def check(problems: Problems) -> None:
        for label, values, word in cases:
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE)
            except helm.HelmError as exc:
                problems.expect(word in str(exc), f"{label}: refused, but the error does not name {word!r}: {exc}")
                continue
            problems.append(f"{label}: rendered, should have been refused")

    return check


def feature_values(one: dict) -> dict:
    """More options than the CI files use: a multi-operator Deployment (OPERATOR_IDS),
    preferred anti-affinity, a longer drain with its grace period, Redis from a Secret,
    OMS CA only, an admin peer by namespace only, PDB with the cluster's eviction policy,
    NATS and database CA only with one stream replica, egress by selector only and to a
    port range."""
    v = copy.deepcopy(one)
    v["mnos"][0]["operatorIds"] = ["awcc", "awcc-bulk"]
    v["mnos"][0]["directions"][0].update(
        replicas=1,
        lanes=["P2", "P3"],
        config={"DRAIN_TIMEOUT_MS": 40000, "BIND_TIMEOUT_MS": 15000, "BIND_OWNERSHIP": "off"},
        terminationGracePeriodSeconds=70,
    )
    v["podAntiAffinity"] = {"type": "preferred", "topologyKey": "topology.kubernetes.io/zone"}
    v["redis"] = {"url": "", "urlSecret": {"name": "redis", "key": "url"}}
    v["oms"]["tls"] = {"enabled": True, "secretName": "oms-ca", "clientAuth": False}
    v["podDisruptionBudget"] = {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": ""}
    v["serviceMonitor"] = {"labels": {"release": "prometheus"}}
    v["dashboard"] = {"enabled": False}
    # A single NATS server verified by a CA (no client certificate), in-cluster by selector
    # only; Redis Cluster nodes on a port range; the database CA only.
    v["nats"].update(streamReplicas=1, tls={"enabled": True, "secretName": "nats-ca", "caKey": "ca.pem"})
    v["database"]["tls"] = {"enabled": True, "secretName": "pg-ca"}
    egress = v["networkPolicy"]["egress"]
    egress["nats"] = {"cidrs": [], "destinations": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "nats"}}, "podSelector": None}]}
    egress["redis"] = {"cidrs": [], "ports": [6379], "destinations": [{"cidrs": ["10.20.6.0/24", "10.20.7.5"], "ports": ["7000-7005", 7100]}, {"podSelector": {"matchLabels": {"app": "redis"}}}]}
    return v


# ---------------------------------------------------------------------------------------
# b. kubernetes-validate


def check_kubernetes_validate(renders: Renders) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        bundled = {kv_utils.major_minor(v) for v in kv_utils.all_versions()}
        for kube in KUBE_VERSIONS:
            problems.expect(kube in bundled, f"kubernetes-validate {kubernetes_validate.__version__} bundles no {kube} schemas ({sorted(bundled)})")
        n = 0
        for label, (_, _, docs) in renders.items.items():
            for doc in docs:
                kind = doc.get("kind")
                name = f"{label}: {kind}/{doc['metadata']['name']}"
                if kind in CRD_KINDS:
                    continue
                if kind not in BUILTIN_KINDS:
                    problems.append(f"{name}: unexpected kind (add it to BUILTIN_KINDS or CRD_KINDS)")
                    continue
                for kube in KUBE_VERSIONS:
                    try:
                        kubernetes_validate.validate(strip_source(doc), kube, strict=True)
                        n += 1
                    except kubernetes_validate.ValidationError as exc:
                        path = ".".join(str(p) for p in exc.path)
                        problems.append(f"{name}: Kubernetes {kube}: {path}: {exc.message}")
                    except kubernetes_validate.SchemaNotFoundError as exc:
                        problems.append(f"{name}: {exc.message}")
        problems.expect(n > 0, "no object validated")
        print(f"       {n} validations (objects x Kubernetes {' and '.join(KUBE_VERSIONS)}), strict")

    return check


# ---------------------------------------------------------------------------------------
# c. CRDs: PrometheusRule and ServiceMonitor


def check_alerts_file(problems: Problems) -> None:
    text = (CHART / "files/alerts.yaml").read_text(encoding="utf-8")
    for lineno, line in enumerate(text.splitlines(), 1):
        if HELM_SYNTAX.search(line):
            problems.append(f"files/alerts.yaml:{lineno}: Helm template syntax: {line.strip()}")
    data = yaml.safe_load(text)
    problems.expect(isinstance(data, dict) and set(data) == {"groups"}, "files/alerts.yaml: top level must be `groups` only")
    names = []
    for g in data.get("groups") or []:
        problems.expect(set(g) <= {"name", "rules", "interval", "limit"} and g.get("name") and g.get("rules"), f"group {g.get('name')}: needs name and rules only")
        for r in g.get("rules") or []:
            names.append(r.get("alert"))
            extra = set(r) - RULE_KEYS
            problems.expect(not extra, f"{r.get('alert')}: keys a Prometheus rule file does not have: {sorted(extra)}")
            if problems.expect(isinstance(r.get("runbook"), str) and r["runbook"].endswith(".md") and "/" not in r["runbook"], f"{r.get('alert')}: runbook must be a file name (*.md)"):
                problems.expect((ROOT / "docs/runbooks" / r["runbook"]).is_file(), f"{r.get('alert')}: docs/runbooks/{r['runbook']} does not exist")
    problems.expect(sorted(names) == sorted(ALERTS), f"alerts in files/alerts.yaml {sorted(names)} != {sorted(ALERTS)}")
    base = load_yaml(CHART / "values.yaml")["runbookBaseUrl"]
    problems.expect(base.rstrip("/").endswith("/docs/runbooks"), f"values.yaml: runbookBaseUrl {base!r} does not point at docs/runbooks")


def check_prometheus_rule(renders: Renders) -> Callable[[Problems], None]:
    source = load_yaml(CHART / "files/alerts.yaml")

    def check(problems: Problems) -> None:
        for label, (_, v, docs) in renders.items.items():
            rules = [d for d in docs if d.get("kind") == "PrometheusRule"]
            if not v["prometheusRule"]["enabled"]:
                problems.expect(not rules, f"{label}: PrometheusRule rendered while disabled")
                continue
            if not problems.expect(len(rules) == 1, f"{label}: {len(rules)} PrometheusRule objects, want 1"):
                continue
            pr = rules[0]
            where = f"{label}: PrometheusRule/{pr['metadata']['name']}"
            problems.expect(pr.get("apiVersion") == "monitoring.coreos.com/v1", f"{where}: apiVersion {pr.get('apiVersion')}")
            for k, val in (v["prometheusRule"].get("labels") or {}).items():
                problems.expect(pr["metadata"]["labels"].get(k) == val, f"{where}: label {k}={val} missing")
            groups = pr["spec"]["groups"]
            rendered = [r for g in groups for r in g["rules"]]
            names = [r.get("alert") for r in rendered]
            problems.expect(sorted(names) == sorted(ALERTS), f"{where}: alerts {sorted(names)}, want exactly {sorted(ALERTS)}")
            base = v["runbookBaseUrl"].rstrip("/")
            extra_labels = v["prometheusRule"].get("additionalRuleLabels") or {}
            src_rules = {r["alert"]: r for g in source["groups"] for r in g["rules"]}
            problems.expect([g["name"] for g in groups] == [g["name"] for g in source["groups"]], f"{where}: groups differ from files/alerts.yaml")
            for r in rendered:
                name = r.get("alert")
                if name not in ALERTS:
                    continue
                runbook, want_for, fragments = ALERTS[name]
                ann = r.get("annotations") or {}
                url = ann.get("runbook_url", "")
                problems.expect(url == f"{base}/{runbook}" and url.endswith("/" + runbook), f"{where}: {name}: runbook_url {url!r}, want {base}/{runbook}")
                problems.expect("runbook" not in r, f"{where}: {name}: the runbook field reached the PrometheusRule")
                problems.expect(ann.get("summary"), f"{where}: {name}: no summary annotation")
                problems.expect(isinstance(r.get("for"), str) and DURATION.match(r["for"]), f"{where}: {name}: `for` missing or not a duration: {r.get('for')!r}")
                if want_for:
                    problems.expect(r.get("for") == want_for, f"{where}: {name}: for {r.get('for')!r}, want {want_for}")
                problems.expect((r.get("labels") or {}).get("severity") in SEVERITIES, f"{where}: {name}: severity label {(r.get('labels') or {}).get('severity')!r}")
                expr = r.get("expr")
                if problems.expect(isinstance(expr, str) and expr.strip(), f"{where}: {name}: empty expr"):
                    flat = " ".join(expr.split())
                    for fragment in fragments:
                        problems.expect(fragment in flat, f"{where}: {name}: expr lacks {fragment!r}: {flat}")
                    problems.expect(promql_balanced(flat), f"{where}: {name}: unbalanced brackets or quotes: {flat}")
                # files/alerts.yaml passed through verbatim (Prometheus templates included).
                want = {k: val for k, val in src_rules[name].items() if k != "runbook"}
                want["annotations"] = {**(want.get("annotations") or {}), "runbook_url": f"{base}/{runbook}"}
                if extra_labels:
                    want["labels"] = {**extra_labels, **(want.get("labels") or {})}
                problems.expect(r == want, f"{where}: {name} differs from files/alerts.yaml:\n  rendered {r}\n  file     {want}")

    return check


def check_service_monitor(renders: Renders) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        for label, (_, v, docs) in renders.items.items():
            sms = [d for d in docs if d.get("kind") == "ServiceMonitor"]
            services = by_kind(docs, "Service")
            if not (v["serviceMonitor"]["enabled"] and v.get("mnos")):
                problems.expect(not sms, f"{label}: ServiceMonitor rendered while disabled or without MNOs")
                continue
            if not problems.expect(len(sms) == 1, f"{label}: {len(sms)} ServiceMonitor objects, want 1"):
                continue
            sm = sms[0]
            where = f"{label}: ServiceMonitor/{sm['metadata']['name']}"
            problems.expect(sm.get("apiVersion") == "monitoring.coreos.com/v1", f"{where}: apiVersion {sm.get('apiVersion')}")
            for k, val in (v["serviceMonitor"].get("labels") or {}).items():
                problems.expect(sm["metadata"]["labels"].get(k) == val, f"{where}: label {k}={val} missing")
            spec = sm["spec"]
            selector = spec["selector"].get("matchLabels") or {}
            problems.expect(selector and not spec["selector"].get("matchExpressions"), f"{where}: selector must be matchLabels")
            problems.expect(NAMESPACE in ((spec.get("namespaceSelector") or {}).get("matchNames") or []), f"{where}: namespaceSelector does not name {NAMESPACE}")
            selected = {n for n, s in services.items() if all(s["metadata"].get("labels", {}).get(k) == val for k, val in selector.items())}
            problems.expect(selected == set(services), f"{where}: selects {sorted(selected)}, not every Service {sorted(services)}")
            endpoints = spec.get("endpoints") or []
            problems.expect(endpoints, f"{where}: no endpoints")
            for ep in endpoints:
                problems.expect(ep.get("path") == "/metrics", f"{where}: endpoint path {ep.get('path')!r}")
                for n in selected:
                    port_names = {p.get("name") for p in services[n]["spec"]["ports"]}
                    problems.expect(ep.get("port") in port_names, f"{where}: port {ep.get('port')!r} not a port of Service {n} ({sorted(port_names)})")
                problems.expect(ep.get("interval") == v["serviceMonitor"]["interval"], f"{where}: interval")

    return check


# ---------------------------------------------------------------------------------------
# d. structure


def check_structure(renders: Renders, label: str) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        values, v, docs = renders.items[label]
        units = expected_units(v)
        deployments = by_kind(docs, "Deployment")
        services = by_kind(docs, "Service")
        pdbs = by_kind(docs, "PodDisruptionBudget")
        policies = by_kind(docs, "NetworkPolicy")
        want_names = [u["name"] for u in units]
        problems.expect(len(want_names) == len(set(want_names)), f"{label}: two units share a name: {want_names}")
        problems.expect(set(deployments) == set(want_names), f"{label}: Deployments {sorted(deployments)}, want one per MNO x direction {sorted(want_names)}")
        problems.expect(not [d for d in docs if d.get("kind") == "Secret"], f"{label}: a Secret is rendered (secrets must only be referenced)")
        problems.expect(set(pdbs) == set(want_names), f"{label}: PodDisruptionBudgets {sorted(pdbs)}, want one per Deployment")
        problems.expect(set(services) == set(want_names), f"{label}: Services {sorted(services)}, want one per Deployment")
        if v["networkPolicy"]["enabled"]:
            problems.expect(set(policies) == set(want_names), f"{label}: NetworkPolicies {sorted(policies)}, want one per Deployment")
        else:
            problems.expect(not policies, f"{label}: NetworkPolicies rendered while disabled")
        sa_name = None
        for sa in by_kind(docs, "ServiceAccount").values():
            sa_name = sa["metadata"]["name"]
            problems.expect(sa.get("automountServiceAccountToken") is False, f"{label}: ServiceAccount mounts an API token")
        for u in units:
            d = deployments.get(u["name"])
            if d is None:
                continue
            check_deployment(problems, f"{label}: Deployment/{u['name']}", d, u, v, sa_name)
            sel = d["spec"]["selector"]["matchLabels"]
            pdb = pdbs.get(u["name"])
            if pdb:
                problems.expect(pdb["spec"]["selector"].get("matchLabels") == sel, f"{label}: PDB {u['name']} does not select its Deployment's pods")
                problems.expect("maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"], f"{label}: PDB {u['name']} sets neither maxUnavailable nor minAvailable")
                policy = v["podDisruptionBudget"].get("unhealthyPodEvictionPolicy") or None
                problems.expect(pdb["spec"].get("unhealthyPodEvictionPolicy") == policy, f"{label}: PDB {u['name']} unhealthyPodEvictionPolicy {pdb['spec'].get('unhealthyPodEvictionPolicy')!r}, want {policy!r}")
            svc = services.get(u["name"])
            if svc:
                check_service(problems, f"{label}: Service/{u['name']}", svc, d, v)
            np = policies.get(u["name"])
            if np:
                check_network_policy(problems, f"{label}: NetworkPolicy/{u['name']}", np, d, u, v)
        check_dashboard(problems, label, docs, v)
        # No secret value anywhere: the only secret material the values name are Secret names.
        text = yaml.safe_dump([strip_source(d) for d in docs])
        problems.expect("BEGIN " not in text and "PRIVATE KEY" not in text, f"{label}: PEM material in the manifests")
        problems.expect(not re.search(r"\b(postgres(ql)?|rediss?|nats)://[^/\s@:]+:[^/\s@]+@", text), f"{label}: a URL with a password in the manifests")

    return check


def check_deployment(problems: Problems, where: str, d: dict, u: dict, v: dict, sa_name: str | None) -> None:
    spec = d["spec"]
    pod = spec["template"]["spec"]
    meta = spec["template"]["metadata"]
    sel = spec["selector"]["matchLabels"]
    m = u["mno"]
    problems.expect(spec.get("replicas") == u["replicas"], f"{where}: replicas {spec.get('replicas')}, want {u['replicas']}")
    problems.expect(all(meta["labels"].get(k) == val for k, val in sel.items()), f"{where}: pod labels do not match the selector")
    problems.expect(sel.get("smpp-connector/mno") == u["mnoName"] and sel.get("smpp-connector/direction") == u["direction"], f"{where}: selector lacks the mno/direction labels: {sel}")
    pool = m["egressIpPool"]
    problems.expect(meta["labels"].get(POOL_KEY) == pool, f"{where}: pod label {POOL_KEY} != {pool!r}")
    problems.expect((meta.get("annotations") or {}).get(POOL_KEY) == pool, f"{where}: pod annotation {POOL_KEY} != {pool!r}")
    # Anti-affinity per (mno, direction) on the hostname (or the configured key).
    anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
    key = v["podAntiAffinity"]["topologyKey"]
    if v["podAntiAffinity"]["type"] == "required":
        terms = anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []
    else:
        terms = [t.get("podAffinityTerm", {}) for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    problems.expect(
        any(t.get("topologyKey") == key and (t.get("labelSelector") or {}).get("matchLabels") == sel for t in terms),
        f"{where}: no {v['podAntiAffinity']['type']} pod anti-affinity on {key} for its own pods",
    )
    # Pod security.
    psc = pod.get("securityContext") or {}
    problems.expect(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot is not true")
    problems.expect(psc.get("runAsUser") == UID, f"{where}: pod runAsUser {psc.get('runAsUser')}, want {UID} (the Dockerfile's USER)")
    problems.expect((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: pod seccompProfile is not RuntimeDefault")
    problems.expect(pod.get("automountServiceAccountToken") is False, f"{where}: the API token is mounted")
    if sa_name:
        problems.expect(pod.get("serviceAccountName") == sa_name, f"{where}: serviceAccountName {pod.get('serviceAccountName')!r}, want {sa_name!r}")
    containers = pod.get("containers") or []
    if not problems.expect(len(containers) == 1, f"{where}: {len(containers)} containers, want 1"):
        return
    c = containers[0]
    csc = c.get("securityContext") or {}
    problems.expect(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation is not false")
    problems.expect(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true")
    problems.expect((csc.get("capabilities") or {}).get("drop") == ["ALL"], f"{where}: capabilities.drop is not [ALL]")
    problems.expect(csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{where}: container runAsNonRoot")
    problems.expect((csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", f"{where}: container seccompProfile")
    problems.expect(not csc.get("privileged"), f"{where}: privileged")
    # /tmp on an emptyDir (read-only root filesystem).
    volumes = {vol["name"]: vol for vol in pod.get("volumes", [])}
    tmp = [mt for mt in c.get("volumeMounts", []) if mt["mountPath"] == "/tmp"]
    problems.expect(tmp and "emptyDir" in volumes.get(tmp[0]["name"], {}), f"{where}: no emptyDir at /tmp")
    # Ports and probes.
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    problems.expect(ports.get("http") == v["ports"]["http"], f"{where}: container port http {ports.get('http')}, want {v['ports']['http']}")
    problems.expect(ports.get("admin") == v["ports"]["admin"], f"{where}: container port admin {ports.get('admin')}, want {v['ports']['admin']}")
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready"), ("startupProbe", "/health")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        problems.expect(get.get("path") == path and get.get("port") in ("http", v["ports"]["http"]), f"{where}: {probe} is not GET {path} on port http: {get}")
    problems.expect(c.get("resources") == u["resources"], f"{where}: resources {c.get('resources')}, want {u['resources']}")
    # Environment.
    env_list = c.get("env") or []
    names = [e["name"] for e in env_list]
    dup = {n for n in names if names.count(n) > 1}
    problems.expect(not dup, f"{where}: env set twice: {sorted(dup)}")
    env = {e["name"]: e for e in env_list}

    def value(name: str) -> Any:
        return env.get(name, {}).get("value")

    if m.get("operatorIds"):
        problems.expect(value("OPERATOR_IDS") == ",".join(m["operatorIds"]) and "MNO_ID" not in env, f"{where}: OPERATOR_IDS (and no MNO_ID) expected")
    else:
        problems.expect(value("MNO_ID") == m["id"] and "OPERATOR_IDS" not in env, f"{where}: MNO_ID {value('MNO_ID')!r}, want {m['id']!r}")
    problems.expect(value("BIND_DIRECTION") == u["direction"], f"{where}: BIND_DIRECTION {value('BIND_DIRECTION')!r}")
    if u["lanes"]:
        problems.expect(value("LANES") == ",".join(u["lanes"]), f"{where}: LANES {value('LANES')!r}, want {','.join(u['lanes'])}")
    else:
        problems.expect("LANES" not in env, f"{where}: LANES set although the values leave it to the service")
    problems.expect(
        (env.get("POD_NAME", {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
        f"{where}: POD_NAME is not the downward API's metadata.name",
    )
    problems.expect(value("EGRESS_IP_POOL") == pool, f"{where}: EGRESS_IP_POOL {value('EGRESS_IP_POOL')!r}, want {pool!r}")
    problems.expect(value("NATS_URL") == v["nats"]["url"], f"{where}: NATS_URL")
    problems.expect(value("NATS_STREAM_REPLICAS") == str(v["nats"]["streamReplicas"]), f"{where}: NATS_STREAM_REPLICAS {value('NATS_STREAM_REPLICAS')!r}, want {v['nats']['streamReplicas']}")
    problems.expect(value("OMS_BASE_URL") == v["oms"]["baseUrl"], f"{where}: OMS_BASE_URL")
    problems.expect(value("HTTP_PORT") == str(v["ports"]["http"]) and value("ADMIN_PORT") == str(v["ports"]["admin"]), f"{where}: HTTP_PORT/ADMIN_PORT")
    # Secrets: referenced, never inlined.
    refs = {"ADMIN_TOKEN": v["admin"]["tokenSecret"], "DATABASE_URL": v["database"]["urlSecret"]}
    if v["redis"]["urlSecret"]["name"]:
        refs["REDIS_URL"] = v["redis"]["urlSecret"]
    else:
        problems.expect(value("REDIS_URL") == v["redis"]["url"], f"{where}: REDIS_URL")
    for name, ref in refs.items():
        skr = (env.get(name, {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        problems.expect(skr == {"name": ref["name"], "key": ref["key"]}, f"{where}: {name} is not secretKeyRef {ref['name']}/{ref['key']}: {env.get(name)}")
    for e in env_list:
        if e["name"] in SECRET_ENV or SECRETISH.search(e["name"]):
            problems.expect("value" not in e, f"{where}: {e['name']} has an inline value")
    # Files from Secrets: NATS creds, OMS TLS, SMPP TLS, NATS TLS, Redis TLS.
    files: list[tuple[str, str, str]] = []
    if v["nats"]["credsSecret"]["name"]:
        files.append(("NATS_CREDS", v["nats"]["credsSecret"]["name"], v["nats"]["credsSecret"]["key"]))
    else:
        problems.expect("NATS_CREDS" not in env, f"{where}: NATS_CREDS without a creds Secret")
    for prefix, tls in (("OMS", v["oms"]["tls"]), ("SMPP_TLS", u["smppTls"]), ("NATS_TLS", v["nats"]["tls"]), ("REDIS_TLS", v["redis"]["tls"])):
        if tls.get("enabled"):
            files.append((f"{prefix}_CA_FILE", tls["secretName"], tls["caKey"]))
            if tls.get("clientAuth"):
                files += [(f"{prefix}_CERT_FILE", tls["secretName"], tls["certKey"]), (f"{prefix}_KEY_FILE", tls["secretName"], tls["keyKey"])]
            else:
                problems.expect(f"{prefix}_CERT_FILE" not in env and f"{prefix}_KEY_FILE" not in env, f"{where}: {prefix} client certificate without clientAuth")
        else:
            problems.expect(not any(n.startswith(prefix + "_") and n.endswith("_FILE") for n in env), f"{where}: {prefix} files set while its TLS is disabled")
    for name, secret_name, key in files:
        path = value(name)
        found = mounted_file(pod, c, path) if path else None
        problems.expect(found and found[0].get("secretName") == secret_name and found[1] == key, f"{where}: {name}={path!r} is not the file {key} of Secret {secret_name} mounted read-only")
        if found:
            mount = [mt for mt in c["volumeMounts"] if path.startswith(mt["mountPath"].rstrip("/") + "/")][0]
            problems.expect(mount.get("readOnly") is True, f"{where}: the mount of {name} is not read-only")
    for backend in ("nats", "redis"):
        if v[backend]["tls"].get("enabled"):
            path = value(f"{backend.upper()}_TLS_CA_FILE") or ""
            problems.expect(path.startswith(TLS_DIRS[backend] + "/"), f"{where}: {backend.upper()}_TLS_CA_FILE={path!r} is not under {TLS_DIRS[backend]}/")
    # The database's TLS files: no variable (DATABASE_URL names them), mounted where the
    # README says, read-only.
    db_tls = v["database"]["tls"]
    db_mounts = [mt for mt in c.get("volumeMounts", []) if mt["mountPath"] == TLS_DIRS["database"]]
    if db_tls.get("enabled"):
        want_keys = [db_tls["caKey"]] + ([db_tls["certKey"], db_tls["keyKey"]] if db_tls.get("clientAuth") else [])
        for key in want_keys:
            found = mounted_file(pod, c, f"{TLS_DIRS['database']}/{key}")
            problems.expect(found and found[0].get("secretName") == db_tls["secretName"] and found[1] == key, f"{where}: {TLS_DIRS['database']}/{key} is not the file {key} of Secret {db_tls['secretName']}")
        if problems.expect(len(db_mounts) == 1, f"{where}: database.tls enabled, but nothing is mounted at {TLS_DIRS['database']}"):
            problems.expect(db_mounts[0].get("readOnly") is True, f"{where}: {TLS_DIRS['database']} is not mounted read-only")
            items = (volumes.get(db_mounts[0]["name"], {}).get("secret") or {}).get("items") or []
            problems.expect(sorted(i["key"] for i in items) == sorted(want_keys), f"{where}: the database TLS volume holds {sorted(i['key'] for i in items)}, want {sorted(want_keys)}")
    else:
        problems.expect(not db_mounts, f"{where}: {TLS_DIRS['database']} mounted while database.tls is disabled")
    # Secret volumes: readable by the pod's user through its group (fsGroup), never writable
    # nor world-readable (keys included).
    problems.expect(psc.get("fsGroup") == UID, f"{where}: pod fsGroup {psc.get('fsGroup')}, want {UID} (Secret files are 0440, group fsGroup)")
    for vol in pod.get("volumes", []):
        secret = vol.get("secret")
        if secret is None:
            continue
        modes = [secret.get("defaultMode", 0o644)] + [i["mode"] for i in secret.get("items") or [] if "mode" in i]
        problems.expect(all(m & ~0o440 == 0 for m in modes), f"{where}: Secret volume {vol['name']} has mode(s) {[oct(m) for m in modes]}, want 0440 at most")
    # config: each variable as the values say, nothing else of the service's own.
    for name, val in u["config"].items():
        if val is None or val == "":
            problems.expect(name not in env, f"{where}: {name} set although empty in the values")
        else:
            problems.expect(value(name) == env_text(val), f"{where}: {name}={value(name)!r}, want {env_text(val)!r}")
    extra = {e["name"] for e in v.get("extraEnv") or []}
    allowed = WIRED_ENV | {"EGRESS_IP_POOL"} | set(u["config"]) | extra
    problems.expect(set(env) <= allowed, f"{where}: unexpected env {sorted(set(env) - allowed)}")
    # Grace period above what the service needs after SIGTERM (from the env it runs with).
    def ms(name: str, default: int) -> int:
        raw = value(name)
        return int(raw) if raw else default

    pre_stop = 0
    cmd = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    if cmd:
        problems.expect(cmd[0] in ("/bin/sleep", "sleep") and len(cmd) == 2, f"{where}: preStop is not a sleep: {cmd}")
        pre_stop = int(cmd[-1])
    problems.expect(pre_stop == v["preStopSleepSeconds"], f"{where}: preStop sleep {pre_stop}, want {v['preStopSleepSeconds']}")
    needed = pre_stop + math.ceil((ms("DRAIN_TIMEOUT_MS", 10000) + ms("BIND_TIMEOUT_MS", 10000) + 2000 + 5000) / 1000)
    grace = pod.get("terminationGracePeriodSeconds")
    problems.expect(isinstance(grace, int) and grace > needed, f"{where}: terminationGracePeriodSeconds {grace} not above preStop + drain + bind + 7 s = {needed} s")
    problems.expect(grace == u["grace"], f"{where}: terminationGracePeriodSeconds {grace}, want {u['grace']}")


def check_service(problems: Problems, where: str, svc: dict, d: dict, v: dict) -> None:
    pod_labels = d["spec"]["template"]["metadata"]["labels"]
    sel = svc["spec"].get("selector") or {}
    problems.expect(sel == d["spec"]["selector"]["matchLabels"] and all(pod_labels.get(k) == val for k, val in sel.items()), f"{where}: does not select its Deployment's pods")
    ports = {p.get("name"): p for p in svc["spec"]["ports"]}
    container_ports = {p["name"] for p in d["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for name in ("http", "admin"):
        p = ports.get(name)
        if problems.expect(p, f"{where}: no port {name}"):
            problems.expect(p["port"] == v["ports"][name] and p.get("targetPort") in container_ports | {v["ports"][name]}, f"{where}: port {name} {p}")


def check_network_policy(problems: Problems, where: str, np: dict, d: dict, u: dict, v: dict) -> None:
    spec = np["spec"]
    problems.expect(spec["podSelector"].get("matchLabels") == d["spec"]["selector"]["matchLabels"], f"{where}: does not select its Deployment's pods")
    problems.expect(sorted(spec.get("policyTypes") or []) == ["Egress", "Ingress"], f"{where}: policyTypes {spec.get('policyTypes')}")
    egress = spec.get("egress") or []
    Rule = tuple[frozenset[str] | None, frozenset[tuple[str, int, int | None]]]

    def peers(rule: dict) -> frozenset[str] | None:
        """The rule's `to` as "cidr:X" and "sel:{selectors}" strings; None: no `to` (any address)."""
        if "to" not in rule:
            return None
        out = set()
        for peer in rule["to"]:
            if "ipBlock" in peer:
                if set(peer) != {"ipBlock"} or peer["ipBlock"].get("except"):
                    problems.append(f"{where}: egress ipBlock peer with more than a cidr: {peer}")
                out.add("cidr:" + str(peer["ipBlock"].get("cidr")))
            else:
                if not (set(peer) <= {"namespaceSelector", "podSelector"}) or not any(peer.values()):
                    problems.append(f"{where}: egress peer that is neither an ipBlock nor a non-empty selector: {peer}")
                out.add("sel:" + json.dumps(peer, sort_keys=True))
        return frozenset(out)

    def ports(rule: dict) -> frozenset[tuple[str, int, int | None]]:
        return frozenset((p.get("protocol", "TCP"), p.get("port"), p.get("endPort")) for p in rule.get("ports") or [])

    def want_ports(spec_ports: list) -> frozenset[tuple[str, int, int | None]]:
        out = set()
        for p in spec_ports:
            if isinstance(p, str):
                a, b = (int(x) for x in p.split("-"))
                out.add(("TCP", a, b if b != a else None))
            else:
                out.add(("TCP", int(p), None))
        return frozenset(out)

    def want_peers(dest: dict) -> frozenset[str]:
        out = {"cidr:" + cidr(c) for c in dest.get("cidrs") or []}
        sel = {k: dest[k] for k in ("namespaceSelector", "podSelector") if dest.get(k)}
        if sel:
            out.add("sel:" + json.dumps(sel, sort_keys=True))
        return frozenset(out)

    # The MNO's (and its backups') SMSCs: one rule per IP:port pair, TCP.
    endpoints = set(u["endpoints"])
    smsc = set()
    rest: list[Rule] = []
    for rule in egress:
        to, pr = peers(rule), ports(rule)
        if to is not None and len(to) == 1 and len(pr) == 1:
            c, (proto, port, end) = next(iter(to)), next(iter(pr))
            if c.startswith("cidr:") and proto == "TCP" and end is None and (c[5:], port) in endpoints:
                smsc.add((c[5:], port))
                continue
        rest.append((to, pr))
    problems.expect(smsc == endpoints, f"{where}: SMSC egress {sorted(smsc)}, want {sorted(endpoints)}")
    # The backends: `cidrs` on `ports`, then one rule per destination (its ports or the backend's).
    backends = v["networkPolicy"]["egress"]
    wanted: list[tuple[str, Rule]] = []
    for name in ("nats", "redis", "postgresql", "oms"):
        b = backends[name]
        problems.expect(b["cidrs"] or b.get("destinations"), f"{where}: {name} has neither cidrs nor destinations in the values")
        if b["cidrs"]:
            wanted.append((name, (want_peers({"cidrs": b["cidrs"]}), want_ports(b["ports"]))))
        for i, dest in enumerate(b.get("destinations") or []):
            wanted.append((f"{name}.destinations[{i}]", (want_peers(dest), want_ports(dest.get("ports") or b["ports"]))))
    dns_ports = frozenset((proto, p, None) for p in backends["dns"]["ports"] for proto in ("UDP", "TCP"))
    dns_to = frozenset("cidr:" + cidr(c) for c in backends["dns"]["cidrs"]) or None
    wanted.append(("DNS", (dns_to, dns_ports)))
    unmatched = list(rest)
    for name, rule in wanted:
        if rule in unmatched:
            unmatched.remove(rule)
        else:
            problems.append(f"{where}: no egress rule to {name} {sorted(rule[0] or ['*'])} on {sorted(rule[1], key=str)}")
    for to, pr in unmatched:
        problems.append(f"{where}: unexpected egress rule to {sorted(to or ['*'])} on {sorted(pr, key=str)}")
    for to, pr in rest:
        problems.expect(to is not None or (to, pr) == (dns_to, dns_ports), f"{where}: an egress rule open to every address: ports {sorted(pr, key=str)}")
        problems.expect(to is None or to, f"{where}: an egress rule with an empty `to` (every address): ports {sorted(pr, key=str)}")
    problems.expect(len(egress) == len(endpoints) + len(wanted), f"{where}: {len(egress)} egress rules, want {len(endpoints) + len(wanted)}")
    # Ingress: http from the monitoring peers, admin from the admin peers, nothing else.
    ingress = spec.get("ingress") or []
    problems.expect(len(ingress) == 2, f"{where}: {len(ingress)} ingress rules, want 2")
    for name in ("http", "admin"):
        peers_values = v["networkPolicy"]["ingress"]["metrics" if name == "http" else "admin"]
        want_peer = {k: val for k, val in peers_values.items() if val}
        rules = [r for r in ingress if ports(r) == frozenset({("TCP", v["ports"][name], None)})]
        if problems.expect(len(rules) == 1, f"{where}: no single ingress rule for port {name}"):
            problems.expect(rules[0].get("from") == [want_peer], f"{where}: ingress to {name} from {rules[0].get('from')}, want {[want_peer]}")


def check_dashboard(problems: Problems, label: str, docs: list[dict], v: dict) -> None:
    maps = [d for d in docs if d.get("kind") == "ConfigMap" and (d["metadata"].get("labels") or {}).get("grafana_dashboard") is not None]
    if not v["dashboard"]["enabled"]:
        problems.expect(not maps, f"{label}: dashboard ConfigMap rendered while disabled")
        return
    if not problems.expect(len(maps) == 1, f"{label}: {len(maps)} dashboard ConfigMaps, want 1"):
        return
    cm = maps[0]
    problems.expect(cm["metadata"]["labels"]["grafana_dashboard"] == "1", f"{label}: grafana_dashboard label is not \"1\"")
    data = cm.get("data") or {}
    problems.expect(len(data) == 1 and all(k.endswith(".json") for k in data), f"{label}: dashboard ConfigMap data keys {sorted(data)}")
    for key, text in data.items():
        try:
            rendered = json.loads(text)
        except ValueError as exc:
            problems.append(f"{label}: {key} is not valid JSON: {exc}")
            continue
        source = json.loads((CHART / "files/dashboard.json").read_text(encoding="utf-8"))
        problems.expect(rendered == source, f"{label}: {key} differs from files/dashboard.json")


# ---------------------------------------------------------------------------------------
# Dashboard content, metric names, variables, documentation


def check_dashboard_file(problems: Problems) -> None:
    dash = json.loads((CHART / "files/dashboard.json").read_text(encoding="utf-8"))
    problems.expect(dash.get("uid") and dash.get("title"), "dashboard without uid/title")
    variables = {t["name"]: t for t in (dash.get("templating") or {}).get("list", [])}
    for name in ("mno", "direction"):
        problems.expect(name in variables and variables[name].get("type") == "query", f"dashboard: no query variable ${name}")
    exprs: list[str] = []
    ids = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            ids.append(p.get("id"))
            walk(p.get("panels") or [])
            for t in p.get("targets") or []:
                if t.get("expr"):
                    exprs.append(t["expr"])
                    problems.expect(promql_balanced(t["expr"]), f"dashboard panel {p.get('title')!r}: unbalanced expr {t['expr']}")

    walk(dash.get("panels") or [])
    problems.expect(len(ids) == len(set(ids)), "dashboard: panel ids are not unique")
    used = names_in("\n".join(exprs))
    declared, _ = declared_metrics()
    wanted = list(DASHBOARD_METRICS)
    mailbox = sorted(n for n in declared if n.startswith("smpp_connector_actor_mailbox"))
    problems.expect(mailbox, "metric.rs declares no smpp_connector_actor_mailbox* metric")
    wanted += mailbox[:1]
    for metric in wanted:
        problems.expect(metric in used, f"dashboard: no panel queries {metric}")
    # Per actor, per pod or per backend, not per operator: no $mno.
    filtered = [e for e in exprs if not any(n in e for n in ("smpp_connector_actor", "submit_latency", "smpp_connector_backend_"))]
    problems.expect(all("$mno" in e for e in filtered), "dashboard: a per-operator panel ignores $mno: " + "; ".join(e for e in filtered if "$mno" not in e))


def check_metric_names(metrics_out: str | None) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        declared, histograms = declared_metrics()
        problems.expect(declared, "no metric declared in actors/src/telemetry/metric.rs")
        exported = exported_names(declared, histograms)
        used: set[str] = set()
        for name in ("alerts.yaml", "dashboard.json"):
            found = names_in((CHART / "files" / name).read_text(encoding="utf-8"))
            problems.expect(found, f"files/{name} names no smpp_* metric")
            for n in sorted(found - exported):
                hint = " (a histogram: use _bucket, _sum or _count)" if n in histograms else ""
                problems.append(f"files/{name}: {n} is not a metric of actors/src/telemetry/metric.rs{hint}")
            used |= found
        if metrics_out:
            Path(metrics_out).write_text("".join(f"{n}\n" for n in sorted(used)), encoding="utf-8")
            print(f"       {len(used)} metric names written to {metrics_out}")

    return check


def check_service_variables(chart: helm.Chart, renders: Renders) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        required, mentioned = service_variables()
        problems.expect(len(required) > 30, f"only {len(required)} service variables found in README.md / src/config.rs")
        config_props = set(chart.schema["$defs"]["config"]["properties"])
        rendered_env: set[str] = set()
        for _, _, docs in renders.items.values():
            for d in docs:
                if d.get("kind") == "Deployment":
                    for c in d["spec"]["template"]["spec"]["containers"]:
                        rendered_env |= {e["name"] for e in c.get("env") or []}
        for name in sorted(required):
            if name in WIRED_ENV:
                problems.expect(name in rendered_env, f"{name}: set by the chart, but no render sets it")
            else:
                problems.expect(name in config_props, f"{name}: a service variable the chart cannot set (add it to $defs.config in values.schema.json)")
        for name in sorted(config_props - mentioned):
            problems.append(f"config.{name}: not a variable of the service (README.md Configuration, src/config.rs)")
        overlap = config_props & WIRED_ENV
        problems.expect(not overlap, f"set both by the chart and through config: {sorted(overlap)}")

    return check


def schema_paths(schema: dict) -> list[str]:
    """Every documented value path: objects with properties are descended into; mnos[] and
    directions[] items too; $defs.config only under the top-level `config`."""
    defs = schema.get("$defs", {})
    out: list[str] = []

    def walk(node: dict, path: str) -> None:
        ref = node.get("$ref")
        if ref:
            target = ref.rsplit("/", 1)[-1]
            if target in ("resources", "grace", "selector") or (target == "config" and path != "config"):
                out.append(path)
                return
            node = defs[target]
        if node.get("type") == "array" and isinstance(node.get("items"), dict) and node["items"].get("properties"):
            out.append(path)
            walk(node["items"], path + "[]")
            return
        props = node.get("properties")
        if node.get("type") in ("object", ["object", "null"]) and props:
            for k, sub in props.items():
                walk(sub, f"{path}.{k}" if path else k)
            return
        out.append(path)

    walk(schema, "")
    return [p for p in out if p]


def check_documentation(chart: helm.Chart) -> Callable[[Problems], None]:
    def check(problems: Problems) -> None:
        readme = (CHART / "README.md").read_text(encoding="utf-8")
        documented: set[str] = set()
        for line in readme.splitlines():
            if line.startswith("|"):
                first = line.strip().strip("|").split("|")[0]
                documented |= set(re.findall(r"`([^`]+)`", first))
        schema = chart.schema
        problems.expect(schema and schema.get("additionalProperties") is False, "values.schema.json: top level must forbid unknown values")
        paths = schema_paths(schema)
        for p in paths:
            problems.expect(p in documented, f"{p}: not in the chart README's values table")
        # Every default value is a schema path (helm's own validation enforces the types).
        values = load_yaml(CHART / "values.yaml")

        def walk(val: Any, node: dict, path: str) -> None:
            if "$ref" in node:
                node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
            props = node.get("properties")
            if isinstance(val, dict) and props:
                for k, sub in val.items():
                    if k not in props:
                        problems.append(f"values.yaml: {path}{k} is not in values.schema.json")
                    else:
                        walk(sub, props[k], f"{path}{k}.")

        walk(values, schema, "")
        problems.expect(values.get("replicas") == 2, "values.yaml: replicas must default to 2")

    return check


# ---------------------------------------------------------------------------------------
# e. Dockerfile


IMAGE_REF = re.compile(r"^(?P<name>[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)(:(?P<tag>[\w][\w.-]{0,127}))?(@(?P<digest>sha256:[0-9a-f]{64}))?$")


def image_pinned(ref: str) -> str | None:
    """None when `ref` is pinned (a digest, or a tag with a full x.y.z version or a date);
    else why not."""
    m = IMAGE_REF.match(ref)
    if not m:
        return f"{ref}: not an image reference"
    if m.group("digest"):
        return None
    tag = m.group("tag")
    if not tag:
        return f"{ref}: no tag (floats as :latest)"
    if tag == "latest" or tag.startswith("latest"):
        return f"{ref}: floating tag {tag}"
    if re.search(r"(^|[^0-9.])\d+\.\d+\.\d+([^0-9.]|$)", tag) or re.search(r"(^|\D)(19|20)\d{6}(\D|$)", tag):
        return None
    return f"{ref}: tag {tag} floats (no exact x.y.z version or snapshot date; or pin by @sha256 digest)"


def check_dockerfile(problems: Problems) -> None:
    path = ROOT / "Dockerfile"
    commands = dockerfile.parse_file(str(path))
    global_args: dict[str, str] = {}
    stages: list[dict] = []
    for cmd in commands:
        kind = cmd.cmd.upper()
        if kind == "ARG" and not stages:
            for a in cmd.value:
                name, _, default = a.partition("=")
                global_args[name] = default
        elif kind == "FROM":
            value = list(cmd.value)
            flags = [f for f in cmd.flags]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), value[0])
            alias = value[2] if len(value) >= 3 and value[1].upper() == "AS" else None
            stages.append({"image": image, "alias": alias, "cmds": [], "flags": flags, "line": cmd.start_line})
        elif stages:
            stages[-1]["cmds"].append(cmd)
    aliases = [s["alias"] for s in stages]
    problems.expect(len(stages) >= 2, f"Dockerfile: {len(stages)} stage(s), want a multi-stage build")
    problems.expect("builder" in aliases, "Dockerfile: no stage `AS builder`")
    problems.expect(stages and stages[-1]["alias"] == "runtime", "Dockerfile: the last stage is not `AS runtime`")
    for s in stages:
        if s["image"] in aliases[: stages.index(s)]:
            continue
        why = image_pinned(s["image"])
        problems.expect(why is None, f"Dockerfile:{s['line']}: base image not pinned: {why}")
    if not stages:
        return
    runtime = stages[-1]
    users = [c for c in runtime["cmds"] if c.cmd.upper() == "USER"]
    if problems.expect(users, "Dockerfile: the runtime stage has no USER (it would run as root)"):
        user = users[-1].value[0]
        uid, _, gid = user.partition(":")
        problems.expect(uid.isdigit() and int(uid) != 0, f"Dockerfile: runtime USER {user!r} is not a numeric non-root uid (runAsNonRoot needs a number)")
        problems.expect(uid == str(UID), f"Dockerfile: runtime USER uid {uid}, the chart runs as {UID}")
        problems.expect(not gid or (gid.isdigit() and int(gid) != 0), f"Dockerfile: runtime USER group {gid!r} is root or not numeric")
    # The binary: cargo build -p <package> --bin <name> names actors/Cargo.toml's package and bin.
    manifest = tomllib.loads((ROOT / "actors/Cargo.toml").read_text(encoding="utf-8"))
    package = manifest["package"]["name"]
    bins = {b["name"] for b in manifest.get("bin", [])}
    builder = next((s for s in stages if s["alias"] == "builder"), None)
    built_bin = None
    if builder:
        runs = [" ".join(c.value) for c in builder["cmds"] if c.cmd.upper() == "RUN"]
        builds = [r for r in runs if "cargo build" in r]
        if problems.expect(len(builds) == 1, f"Dockerfile: {len(builds)} `cargo build` in the builder stage, want 1"):
            words = shlex.split(builds[0].split("cargo build", 1)[1].split("&&")[0])
            opt: dict[str, str] = {}
            names = {"-p": "p", "--package": "p", "--bin": "bin"}
            for i, w in enumerate(words):
                flag, eq, val = w.partition("=")
                if flag in names and eq:
                    opt[names[flag]] = val
                elif w in names and i + 1 < len(words):
                    opt[names[w]] = words[i + 1]
            problems.expect(opt.get("p") == package, f"Dockerfile: cargo build -p {opt.get('p')!r}, actors/Cargo.toml's package is {package!r}")
            problems.expect(opt.get("bin") in bins, f"Dockerfile: cargo build --bin {opt.get('bin')!r}, actors/Cargo.toml's [[bin]] names {sorted(bins)}")
            problems.expect("--release" in words and "--locked" in words, "Dockerfile: cargo build without --release --locked")
            built_bin = opt.get("bin")
    copies = [c for c in runtime["cmds"] if c.cmd.upper() == "COPY" and any(f == "--from=builder" for f in c.flags)]
    entry = [c for c in runtime["cmds"] if c.cmd.upper() == "ENTRYPOINT"]
    if built_bin and problems.expect(copies, "Dockerfile: the runtime stage copies nothing from the builder"):
        src, dst = copies[-1].value[0], copies[-1].value[-1]
        problems.expect(Path(src).name == built_bin and Path(dst).name == built_bin, f"Dockerfile: COPY {src} {dst} is not the binary {built_bin}")
        if problems.expect(entry and entry[-1].json, "Dockerfile: no exec-form ENTRYPOINT in the runtime stage"):
            problems.expect(entry[-1].value[0] == dst, f"Dockerfile: ENTRYPOINT {entry[-1].value[0]!r} is not the copied binary {dst!r}")
    exposed = {p.split("/")[0] for c in runtime["cmds"] if c.cmd.upper() == "EXPOSE" for p in c.value}
    problems.expect({"8080", "8081"} <= exposed, f"Dockerfile: EXPOSE {sorted(exposed)} lacks 8080/8081")
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    problems.expect("target/" in ignore and ".git/" in ignore, ".dockerignore must exclude target/ and .git/")


# ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics-out", metavar="PATH", help="write the smpp_* metric names the alerts and dashboard use, one per line")
    args = parser.parse_args()

    print(
        f"check-deploy: helm-python-sdk {helm.__version__} (Helm {helm.helm_sdk_version()}), "
        f"kubernetes-validate {kubernetes_validate.__version__} (Kubernetes {' and '.join(KUBE_VERSIONS)})"
    )
    report = Report()
    renders = Renders()
    with helm.Chart.load(str(CHART)) as chart:
        report.run("a. helm lint (default values and ci/*.yaml; Kubernetes " + ", ".join(KUBE_VERSIONS) + ")", check_lint)
        one = load_yaml(CHART / CI_VALUES[0])
        for label in CI_VALUES:
            report.run(f"a. schema + render {label}", make_render_check(chart, renders, label, load_yaml(CHART / label)))
        report.run("a. schema + render default values (no MNO)", make_render_check(chart, renders, "default values", None))
        report.run("a. schema + render feature values (OPERATOR_IDS, preferred anti-affinity, ...)", make_render_check(chart, renders, "feature values", feature_values(one)))
        report.run("a. invalid values refused (schema and template)", check_refusals(chart, one))
        report.run("b. kubernetes-validate --strict", check_kubernetes_validate(renders))
        report.run("c. files/alerts.yaml is a plain Prometheus rule file; runbooks exist", check_alerts_file)
        report.run("c. PrometheusRule: the 8 alerts, runbook_url, for, severity", check_prometheus_rule(renders))
        report.run("c. ServiceMonitor selects every Service's http port", check_service_monitor(renders))
        for label in renders.items:
            report.run(f"d. structure of {label}", check_structure(renders, label))
        report.run("d. dashboard.json: panels and variables", check_dashboard_file)
        report.run("metrics named by alerts and dashboard exist (actors/src/telemetry/metric.rs)", check_metric_names(args.metrics_out))
        report.run("every service variable is settable through the chart", check_service_variables(chart, renders))
        report.run("every value in values.schema.json and the chart README", check_documentation(chart))
    report.run("e. Dockerfile: stages, pinned bases, non-root, the workspace's binary", check_dockerfile)
    print(f"check-deploy: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
