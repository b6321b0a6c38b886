"""Checks Stageflow's /metrics exposition and the monitoring files built on it.

usage: check_exposition.py exposition SCRAPE_FILE
       check_exposition.py dashboard DASHBOARD_JSON RULES_OUT
       check_exposition.py alerts ALERTS_YML

exposition: parses a scrape (text format 0.0.4) with prometheus_client and fails unless every
    family of FAMILIES is there with its type, its labels (and, where fixed, every label value),
    sane values and whole histograms; the optional families (backups, scanner) only when shown.
    Also: the HTTP counter has a GET /api/v1/tickets/{ticket_id} 401 sample, no route label
    carries a UUID, and the platform realm counted at least one failed login (the traffic
    scripts/check-metrics.sh makes first). Prints one line per family.
dashboard: loads deploy/grafana/stageflow-dashboard.json, checks unique panel ids and gridPos,
    that every PromQL expression names only families of FAMILIES (or `up`), and writes the
    expressions (Grafana variables replaced) as recording rules to RULES_OUT, for
    `promtool check rules` to parse.
alerts: every expression of deploy/prometheus/alerts.yml names only families of FAMILIES.

Run by scripts/check-metrics.sh, in its virtual environment (clients/metrics/requirements.txt).
FAMILIES is the contract of docs/operations.md, "Metrics and alerts": change both together.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

RUNBOOK = "docs/operations.md#metrics-and-alerts"


@dataclass(frozen=True)
class Family:
    type: str
    labels: tuple[str, ...] = ()
    # label -> every value it must show (and no other), for labels with a fixed set
    values: dict[str, frozenset[str]] = field(default_factory=dict)
    # why it may be absent (a fresh server has no backup yet, and no scanner configured): then
    # it is checked only if shown
    optional: str = ""
    # 0 or 1 only
    boolean: bool = False
    # (every shown family needs at least one sample: the jobs_* ones, one per registered kind)


def _v(*values: str) -> frozenset[str]:
    return frozenset(values)


HTTP = ("method", "route", "status")
METHODS = _v("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other")
REALMS = {"realm": _v("tenant", "platform")}
NO_BACKUP = "no backup has succeeded yet"
NO_REPLICA = "no read replica configured (DATABASE_READ_URL)"

FAMILIES: dict[str, Family] = {
    "stageflow_http_requests_total": Family("counter", HTTP),
    "stageflow_http_request_duration_seconds": Family("histogram", HTTP),
    "stageflow_db_pool_connections": Family("gauge", ("state",), {"state": _v("idle", "in_use")}),
    "stageflow_db_pool_max_connections": Family("gauge"),
    "stageflow_db_pool_wait_seconds": Family("histogram"),
    # SQLite's group commit (ADR-35); on PostgreSQL it stays at zero
    "stageflow_db_group_commit_writes": Family("histogram"),
    "stageflow_jobs_due": Family("gauge", ("kind",)),
    "stageflow_jobs_oldest_due_age_seconds": Family("gauge", ("kind",)),
    "stageflow_jobs_running": Family("gauge", ("kind",)),
    "stageflow_jobs_failed": Family("gauge", ("kind",)),
    "stageflow_webhook_attempts_total": Family(
        "counter", ("result",), {"result": _v("delivered", "retrying", "failed")}
    ),
    "stageflow_webhook_delivery_failures_total": Family("counter", ("result",), {"result": _v("retrying", "failed")}),
    "stageflow_mail_scans_total": Family("counter", ("verdict",), {"verdict": _v("clean", "infected", "error")}),
    "stageflow_mail_messages_pending": Family("gauge"),
    "stageflow_scanner_up": Family("gauge", optional="no virus scanner configured", boolean=True),
    "stageflow_db_replica_up": Family("gauge", optional=NO_REPLICA, boolean=True),
    "stageflow_db_replica_lag_seconds": Family("gauge", optional=NO_REPLICA),
    # label sets appear as reads are routed, so their values are not all shown at once
    "stageflow_db_routed_reads_total": Family("counter", ("served_by", "reason"), optional=NO_REPLICA),
    "stageflow_sla_events_total": Family("counter", ("kind",), {"kind": _v("at_risk", "breached")}),
    "stageflow_login_failures_total": Family("counter", ("realm",), REALMS),
    "stageflow_account_lockouts_total": Family("counter", ("realm",), REALMS),
    # appears once a remembered caller's read has been checked
    # (verdict: passed, changed; shown as they occur)
    "stageflow_auth_deferred_checks_total": Family(
        "counter", ("verdict",), optional="no remembered caller has read yet"
    ),
    "stageflow_backup_last_success_timestamp_seconds": Family("gauge", optional=NO_BACKUP),
    "stageflow_backup_age_seconds": Family("gauge", optional=NO_BACKUP),
    "stageflow_backup_size_bytes": Family("gauge", optional=NO_BACKUP),
    "stageflow_backup_verified": Family("gauge", optional=NO_BACKUP, boolean=True),
    "process_cpu_seconds_total": Family("counter"),
    "process_resident_memory_bytes": Family("gauge"),
    "process_virtual_memory_bytes": Family("gauge"),
    "process_open_fds": Family("gauge"),
    "process_max_fds": Family("gauge"),
    "process_threads": Family("gauge"),
    "process_start_time_seconds": Family("gauge"),
}

UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
TICKET_ROUTE = "/api/v1/tickets/{ticket_id}"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def fail(errors: list[str]) -> None:
    for e in errors:
        print(f"FAIL {e}", file=sys.stderr)
    sys.exit(1)


# --- exposition -------------------------------------------------------------------------------


TYPE_LINE = re.compile(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$", re.MULTILINE)
SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", re.MULTILINE)


def raw_families(text: str, errors: list[str]) -> dict[str, str]:
    """Family name -> type, from the `# TYPE` lines as written. The names come from here, not
    from prometheus_client, which drops a counter's `_total` from the family name and adds it
    to sample names that lack it (so it would hide a counter exposed without `_total`)."""
    types: dict[str, str] = {}
    for name, kind in TYPE_LINE.findall(text):
        if name in types:
            errors.append(f"family {name}: more than one # TYPE line")
        types[name] = kind
    for sample in sorted(set(SAMPLE_NAME.findall(text))):
        base = next((sample[: -len(x)] for x in HISTOGRAM_SUFFIXES if sample.endswith(x)), None)
        if sample not in types and types.get(base) not in ("histogram", "summary"):
            errors.append(f"sample {sample}: no # TYPE line of its own")
    return types


def check_family(name: str, spec: Family, family, errors: list[str]) -> str:
    """Checks one shown family; returns its summary line."""
    problems: list[str] = []
    if family.type != spec.type:
        problems.append(f"type {family.type}, expected {spec.type}")
    if not family.documentation.strip():
        problems.append("no HELP text")
    samples = family.samples
    if not samples:
        problems.append("no samples")
    wanted = set(spec.labels)
    seen: dict[str, set[str]] = {label: set() for label in spec.labels}
    series: set[tuple[tuple[str, str], ...]] = set()
    for s in samples:
        labels = dict(s.labels)
        le = labels.pop("le", None) if s.name.endswith("_bucket") else None
        if set(labels) != wanted:
            problems.append(f"{s.name}{s.labels}: labels {sorted(labels)}, expected {sorted(wanted)}")
            continue
        for label, value in labels.items():
            seen[label].add(value)
        series.add(tuple(sorted(labels.items())))
        value = s.value
        if math.isnan(value) or value < 0 or (math.isinf(value) and le is None):
            problems.append(f"{s.name}{s.labels}: value {value}")
        if spec.boolean and value not in (0, 1):
            problems.append(f"{s.name}{s.labels}: value {value}, expected 0 or 1")
        if spec.type == "counter" and s.name != name:
            problems.append(f"sample {s.name} in counter {name}")
    for label, values in spec.values.items():
        if seen.get(label, set()) != values:
            problems.append(f"label {label}: values {sorted(seen.get(label, ()))}, expected {sorted(values)}")
    if "method" in seen and not seen["method"] <= METHODS:
        problems.append(f"unexpected method label values {sorted(seen['method'] - METHODS)}")
    if spec.type == "histogram":
        problems.extend(check_histogram(name, samples))
    if problems:
        errors.extend(f"{name}: {p}" for p in problems)
        return f"FAIL  {name} ({spec.type}): {'; '.join(problems)}"
    detail = ", ".join(f"{label}: {len(values)}" for label, values in seen.items())
    return f"ok    {name} ({spec.type}) {len(series)} series" + (f" ({detail})" if detail else "")


def check_histogram(name: str, samples) -> list[str]:
    """Every series of a histogram: cumulative buckets ending at +Inf, +Inf equal to _count."""
    problems: list[str] = []
    by_series: dict[tuple, dict] = {}
    for s in samples:
        labels = dict(s.labels)
        le = labels.pop("le", None)
        entry = by_series.setdefault(tuple(sorted(labels.items())), {"buckets": []})
        if s.name == name + "_bucket":
            entry["buckets"].append((float(le), s.value))
        elif s.name in (name + "_sum", name + "_count"):
            entry[s.name[len(name) :]] = s.value
        else:
            problems.append(f"unexpected sample {s.name}")
    for key, entry in by_series.items():
        buckets = sorted(entry["buckets"])
        where = dict(key) or "{}"
        if not buckets or buckets[-1][0] != math.inf:
            problems.append(f'{where}: no le="+Inf" bucket')
            continue
        if any(b[1] < a[1] for a, b in zip(buckets, buckets[1:], strict=False)):
            problems.append(f"{where}: buckets not cumulative")
        if "_count" not in entry or "_sum" not in entry:
            problems.append(f"{where}: _sum or _count missing")
        elif entry["_count"] != buckets[-1][1]:
            problems.append(f"{where}: _count {entry['_count']} != +Inf bucket {buckets[-1][1]}")
    return problems


def exposition(path: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = Path(path).read_text()
    try:
        parsed = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError and friends on a malformed line
        fail([f"the scrape does not parse: {e!r}"])
    errors: list[str] = []
    types = raw_families(text, errors)
    samples_named = set(SAMPLE_NAME.findall(text))
    # prometheus_client's family of each exposed name (a counter's without its `_total`)
    by_name = {}
    for f in parsed:
        name = f.name + "_total" if f.type == "counter" and f.name + "_total" in types else f.name
        by_name[name] = f
    for name, spec in FAMILIES.items():
        if name not in types:
            if spec.optional:
                print(f"absent {name} (optional: {spec.optional})")
            else:
                print(f"FAIL  {name} ({spec.type}): missing")
                errors.append(f"{name}: missing")
            continue
        if types[name] != spec.type:
            print(f"FAIL  {name}: type {types[name]}, expected {spec.type}")
            errors.append(f"{name}: type {types[name]}, expected {spec.type}")
            continue
        wanted = [name + x for x in HISTOGRAM_SUFFIXES] if spec.type == "histogram" else [name]
        if not set(wanted) <= samples_named:
            print(f"FAIL  {name}: no samples named {sorted(set(wanted) - samples_named)}")
            errors.append(f"{name}: no samples named {sorted(set(wanted) - samples_named)}")
            continue
        print(check_family(name, spec, by_name[name], errors))
    for name in sorted(set(types) - set(FAMILIES)):
        if name.startswith("stageflow_"):
            # Not a failure: a new family is fine, but the dashboard and the alerts (and this
            # list) do not know it yet.
            print(f"note  {name} ({types[name]}) is not in the documented list")

    requests = by_name.get("stageflow_http_requests_total")
    samples = requests.samples if requests else []
    if not any(s.labels.get("route") == TICKET_ROUTE and s.labels.get("status") == "401" for s in samples):
        errors.append(f'stageflow_http_requests_total: no sample with route="{TICKET_ROUTE}", status="401"')
    uuid_routes = {
        (f.name, s.labels["route"]) for f in parsed for s in f.samples if UUID.search(s.labels.get("route", ""))
    }
    for family, route in sorted(uuid_routes):
        errors.append(f"{family}: route label {route!r} carries a UUID (unbounded cardinality)")
    logins = by_name.get("stageflow_login_failures_total")
    platform = [s.value for s in (logins.samples if logins else []) if s.labels.get("realm") == "platform"]
    if not platform or platform[0] < 1:
        errors.append(f'stageflow_login_failures_total{{realm="platform"}} is {platform}, expected >= 1')
    if errors:
        fail(errors)
    print(f"exposition OK: {len(types)} families, {sum(len(f.samples) for f in parsed)} samples")


# --- dashboard and alerts: metric names in PromQL ---------------------------------------------

METRIC = re.compile(r"(?<![A-Za-z0-9_:])((?:stageflow|process)_[A-Za-z0-9_:]*)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def known_names() -> set[str]:
    names = set(FAMILIES)
    for name, spec in FAMILIES.items():
        if spec.type == "histogram":
            names.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return names


def unknown_metrics(expr: str) -> list[str]:
    """The stageflow_/process_ identifiers of `expr` (outside string literals) that are no
    family of FAMILIES (nor a histogram's _bucket/_sum/_count)."""
    bare = STRING.sub('""', expr)
    known = known_names()
    return sorted({m for m in METRIC.findall(bare) if m not in known})


def panels_of(items: list) -> list[dict]:
    out = []
    for p in items:
        out.append(p)
        out.extend(panels_of(p.get("panels", [])))
    return out


GRAFANA_VARIABLES = [
    (re.compile(r"\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}"), "5m"),
    (re.compile(r"\$__range|\$\{__range\}"), "1h"),
    (re.compile(r"\$\{instance(?::regex)?\}|\$instance"), ".*"),
]


def dashboard(path: str, rules_out: str) -> None:
    try:
        board = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        fail([f"{path}: {e}"])
    errors: list[str] = []
    if board.get("schemaVersion") != 39:
        errors.append(f"schemaVersion {board.get('schemaVersion')}, expected 39")
    if not any(i.get("name") == "DS_PROMETHEUS" for i in board.get("__inputs", [])):
        errors.append("no DS_PROMETHEUS input")
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource":
        errors.append("no `datasource` variable")
    instance = variables.get("instance", {})
    query = instance.get("query")
    query = query.get("query") if isinstance(query, dict) else query
    if query != 'label_values(up{job="stageflow"}, instance)':
        errors.append(f"`instance` variable query {query!r}")
    panels = panels_of(board.get("panels", []))
    ids = [p.get("id") for p in panels]
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if duplicates or None in ids:
        errors.append(f"panel ids not unique or missing: {duplicates}")
    exprs: list[tuple[str, str]] = []
    for p in panels:
        title = p.get("title", "?")
        grid = p.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")) or grid["x"] + grid["w"] > 24:
            errors.append(f"panel {p.get('id')} {title!r}: gridPos {grid}")
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            errors.append(f"panel {p.get('id')} {title!r}: no targets")
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                errors.append(f"panel {p.get('id')} {title!r} target {t.get('refId')}: no expr")
                continue
            exprs.append((f"dashboard_panel_{p['id']}_{t.get('refId', 'X')}", expr))
    if query:
        exprs.append(("dashboard_variable_instance", re.sub(r"label_values\((.*), \w+\)", r"\1", query)))
    rules = []
    for record, expr in exprs:
        for unknown in unknown_metrics(expr):
            errors.append(f"{record}: unknown metric {unknown} in {expr!r}")
        for pattern, replacement in GRAFANA_VARIABLES:
            expr = pattern.sub(replacement, expr)
        if "$" in expr:
            errors.append(f"{record}: unreplaced Grafana variable in {expr!r}")
        rules.append({"record": record, "expr": expr})
    # JSON is YAML: promtool reads it as a rule file.
    Path(rules_out).write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=1))
    if errors:
        fail(errors)
    print(f"dashboard OK: {len(panels)} panels, {len(exprs)} expressions, all metric names known")


def alerts(path: str) -> None:
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    errors: list[str] = []
    count = 0
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            count += 1
            name = rule.get("alert") or rule.get("record")
            for unknown in unknown_metrics(rule.get("expr", "")):
                errors.append(f"{name}: unknown metric {unknown}")
            if "alert" in rule:
                if rule.get("labels", {}).get("severity") not in ("page", "ticket"):
                    errors.append(f"{name}: severity {rule.get('labels', {}).get('severity')!r}")
                notes = rule.get("annotations", {})
                if not notes.get("summary") or RUNBOOK not in notes.get("description", ""):
                    errors.append(f"{name}: summary missing or description does not name {RUNBOOK}")
    if errors:
        fail(errors)
    print(f"alerts OK: {count} rules, all metric names known")


def main(argv: list[str]) -> None:
    commands = {"exposition": (exposition, 1), "dashboard": (dashboard, 2), "alerts": (alerts, 1)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    command, _ = commands[argv[1]]
    command(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
