"""The deploy/ monitoring against the real exporters: a running `caed` and `caed-view`, scraped
directly and by a real Prometheus server that loads deploy/prometheus/caed-rules.yml."""
import json
import math
import re
import shutil

import pytest

from deploy_processes import (REPO, daemon_argv, free_port, prometheus_api, prometheus_query, running, sample_value,
                              scrape, viewer_argv, wait_until)

DASHBOARD = REPO / "deploy" / "grafana" / "caed-dashboard.json"
RULES = REPO / "deploy" / "prometheus" / "caed-rules.yml"
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
                   "unless", "inf", "nan"}
# Grafana's variables, as Grafana substitutes them for a dashboard showing everything.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$job": ".*", "$instance": ".*", "$viewer_job": ".*"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or Grafana label_values query) selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)  # Grafana variables
    names = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[m.end():].lstrip().startswith("(") or m.group(0).lower() in PROMQL_KEYWORDS:
            continue  # a function or aggregation, or a keyword
        names.add(m.group(0))
    return names


def dashboard_queries() -> list[str]:
    """The panels' PromQL, and the series selectors of the variables' label_values(SELECTOR, LABEL)."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            queries.append(re.fullmatch(r"label_values\((.*),\s*\w+\)", var["query"]["query"]).group(1))
    return queries


def test_metric_names_finds_selectors_not_functions_labels_or_keywords():
    expr = ('histogram_quantile(0.99, sum by (instance, le) (rate(caed_stage_seconds_bucket{job=~"$job", '
            'stage="pipeline"}[$__rate_interval]))) > 1e3 and on (job) caed_fps * on (job, instance) '
            'group_left (stream) caed_model_info offset 5m')
    assert metric_names(expr) == {"caed_stage_seconds_bucket", "caed_fps", "caed_model_info"}


@pytest.fixture(scope="module")
def exporters(tmp_path_factory):
    """A daemon on a synthetic camera and a viewer decoding its stream, both exporting metrics."""
    tmp = tmp_path_factory.mktemp("exporters")
    zmq_port, daemon_port, viewer_port = free_port(), free_port(), free_port()
    with running(daemon_argv("synthetic", zmq_port, daemon_port, "--fps", "10"), tmp / "caed.log") as daemon, \
            running(viewer_argv(zmq_port, viewer_port), tmp / "caed-view.log") as viewer:
        wait_until(lambda: sample_value(scrape(daemon_port), "caed_frames_published_total") > 0, 90,
                   "the daemon to publish", daemon, tmp / "caed.log")
        wait_until(lambda: sample_value(scrape(viewer_port), "caed_view_frames_decoded_total") > 0, 60,
                   "the viewer to decode", viewer, tmp / "caed-view.log")
        yield {"daemon": daemon_port, "viewer": viewer_port}


def exported_names(port: int) -> set[str]:
    names = set()
    for family in scrape(port).values():
        names |= {s.name for s in family.samples}
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "info": ["_info"]}
        names |= {family.name + suffix for suffix in suffixes.get(family.type, [""])}
    return names


def all_exported_names(exporters) -> set[str]:
    return exported_names(exporters["daemon"]) | exported_names(exporters["viewer"])


def test_dashboard_queries_only_exported_metrics(exporters):
    queried = set().union(*map(metric_names, dashboard_queries()))
    assert queried - all_exported_names(exporters) == set()
    assert {"caed_frames_published_total", "caed_view_latency_seconds_bucket", "caed_frames_dropped_total"} <= queried


@pytest.fixture(scope="module")
def prometheus(exporters, tmp_path_factory):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed: run tests/setup-system.sh (apt-get install prometheus)")
    tmp = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "caed", "static_configs": [{"targets": [f"127.0.0.1:{exporters['daemon']}"]}]},
            {"job_name": "caed-view", "static_configs": [{"targets": [f"127.0.0.1:{exporters['viewer']}"]}]},
        ],
    }
    (tmp / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    argv = ["prometheus", f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    with running(argv, tmp / "prometheus.log") as server:
        wait_until(lambda: prometheus_api(port, "status/runtimeinfo")["status"] == "success", 30,
                   "prometheus to serve its API", server, tmp / "prometheus.log")
        yield {"port": port, "log": tmp / "prometheus.log", "process": server}


def instant_values(prometheus, query: str) -> list[float]:
    answer = prometheus_query(prometheus["port"], query)
    assert answer["status"] == "success", (query, answer)
    return [float(r["value"][1]) for r in answer["data"]["result"]]


def test_prometheus_reads_back_fps_and_a_latency_quantile(prometheus):
    fps = wait_until(lambda: [v for v in instant_values(prometheus, 'caed_fps{job="caed"}') if v > 0], 30,
                     "a positive caed_fps in prometheus", prometheus["process"], prometheus["log"])
    latency_p90 = 'histogram_quantile(0.9, sum by (le) (rate(caed_view_latency_seconds_bucket[10s])))'
    latency = wait_until(lambda: [v for v in instant_values(prometheus, latency_p90) if math.isfinite(v)], 30,
                         "a finite latency quantile in prometheus", prometheus["process"], prometheus["log"])
    assert fps[0] > 0 and 0 < latency[0] < 10


def test_every_dashboard_query_returns_data(prometheus):
    queries = []
    for query in dashboard_queries():
        for name, value in GRAFANA_VARIABLES.items():
            query = query.replace(name, value)
        queries.append(query)
    wait_until(lambda: all(instant_values(prometheus, q) for q in queries), 30,
               "every dashboard query to return series", prometheus["process"], prometheus["log"])


def evaluated_rules(prometheus) -> list[dict]:
    """The alert rules as the server parsed them, once each has been evaluated without error."""
    def evaluated():
        groups = prometheus_api(prometheus["port"], "rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r["health"] == "ok" for r in rules) else None

    return wait_until(evaluated, 30, "the alert rules to be evaluated", prometheus["process"], prometheus["log"])


def test_alert_rules_load_and_evaluate(prometheus):
    rules = evaluated_rules(prometheus)
    assert sorted(r["name"] for r in rules) == sorted(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.M))
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert "CaedDown" not in firing and "CaedNoFrames" not in firing


def test_alert_rules_query_only_exported_metrics(exporters, prometheus):
    queried = set().union(*(metric_names(r["query"]) for r in evaluated_rules(prometheus)))
    assert queried - all_exported_names(exporters) - {"up"} == set()
    assert {"caed_frames_published_total", "caed_frames_captured_total", "caed_view_frames_lost_total"} <= queried
