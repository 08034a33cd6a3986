"""infra/k8s/components/monitoring as the production overlay renders it: a PodMonitor that scrapes
every service, the alert rules (each documented in docs/operations.md), and the Grafana
dashboard. Every PromQL expression is parsed (promql-parser, Prometheus' grammar) and may name
only metrics the services export, with only the labels those metrics have (plus the labels
Prometheus gives a scraped target): the exported metrics are read from the registry the
services' metric modules fill, with a request through an HTTP service for its request
metrics."""

from __future__ import annotations

import functools
import importlib
import json
import re
from typing import Any

import promql_parser
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from shared.http.operations import operations_router, prometheus
from tests.support.alerts import ALERTS, rules_of, runbook
from tests.support.k8s import of_kind

METRIC_MODULES = (
    "services.command.metrics",
    "services.relay.relay",
    "services.projections.service",
    "services.projections.metrics",
    "services.consumer_pending",
    "services.query.freshness",
    "services.live_gateway.hub",
    "services.scheduler.service",
    "services.notifier.service",
    "shared.blobs.store",
    "shared.http.operations",
)
"""Every module that defines a service's metrics."""

TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container", "endpoint"})
"""The labels Prometheus adds to every series of a PodMonitor's target."""

SCRAPE_METRICS: dict[str, frozenset[str]] = {"up": frozenset()}
"""Series Prometheus itself writes for each target."""


@functools.cache
def exported() -> dict[str, frozenset[str]]:
    """Every series name the services export, with its label names."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    # Litestar's request metrics exist once a request went through its middleware.
    app = Litestar(
        route_handlers=[operations_router("monitoring-test", _ready, timeout=0.5), _route],
        middleware=[prometheus("monitoring-test").middleware],
    )
    with TestClient(app) as client:
        assert client.get("/a-route").status_code == 200
    names: dict[str, frozenset[str]] = dict(SCRAPE_METRICS)
    # The registry's own map from each metric to its series names (prometheus-client has no
    # public way to list a labelled metric's label names before it has a child).
    for collector, series in REGISTRY._collector_to_names.items():
        labels = frozenset(getattr(collector, "_labelnames", ()))
        if not isinstance(collector, MetricWrapperBase):
            labels = frozenset(
                label
                for family in collector.collect()
                for sample in family.samples
                for label in sample.labels
            )
        for name in series:
            names[name] = labels | ({"le"} if name.endswith("_bucket") else set())
    return names


async def _ready() -> None:
    return None


@get("/a-route", sync_to_thread=False)
def _route() -> str:
    return "counted"


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.MatrixSelector):
            found.append(node.vector_selector)
        elif isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return found


def problems_of(query: str) -> list[str]:
    """What is wrong with ``query``: a metric no service exports, a label it does not have."""
    try:
        expr = promql_parser.parse(query)
    except ValueError as error:
        return [f"does not parse: {error}"]
    known = exported()
    problems: list[str] = []
    for selector in selectors(expr):
        if selector.name not in known:
            problems.append(f"no service exports {selector.name}")
            continue
        for matcher in selector.matchers.matchers:
            if matcher.name not in known[selector.name] | TARGET_LABELS:
                problems.append(f"{selector.name} has no label {matcher.name}")

    def grouping(node: promql_parser.Expr) -> bool:
        labels: list[str] = []
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels, inner = node.modifier.labels, node.expr
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            labels, inner = (matching.labels if matching else []), node
        if labels:
            have = TARGET_LABELS.union(*(known.get(s.name or "", ()) for s in selectors(inner)))
            problems.extend(
                f"groups by {label}, which no series there has"
                for label in labels
                if label not in have
            )
        return True

    promql_parser.walk(expr, grouping)
    return problems


def rules() -> list[dict[str, Any]]:
    (rule_file,) = of_kind("production", "PrometheusRule")
    return rules_of([rule_file])


def test_the_checker_finds_what_is_wrong() -> None:
    assert problems_of("sum(rate(tutorpulse_commands_total[5m])") == [
        "does not parse: unclosed left parenthesis"
    ]
    assert problems_of("tutorpulse_no_such_metric > 0") == [
        "no service exports tutorpulse_no_such_metric"
    ]
    assert problems_of('tutorpulse_relay_leader{centre="x"}') == [
        "tutorpulse_relay_leader has no label centre"
    ]
    assert problems_of("sum by (centre) (tutorpulse_relay_leader)") == [
        "groups by centre, which no series there has"
    ]
    assert (
        problems_of('sum by (centre) (rate(tutorpulse_centre_commands_total{outcome="error"}[5m]))')
        == []
    )


def test_the_rules_are_exactly_the_documented_alerts_each_annotated() -> None:
    found = rules()
    assert {rule["alert"] for rule in found} == ALERTS
    assert len(found) == len(ALERTS)
    headings = set(re.findall(r"^### (\w+)$", runbook(), re.M))
    for rule in found:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), rule
        assert annotations["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert rule["alert"] in headings, f"docs/operations.md has no section {rule['alert']}"
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_every_alert_expression_parses_and_names_exported_metrics_and_labels(alert: str) -> None:
    (rule,) = [rule for rule in rules() if rule["alert"] == alert]
    assert problems_of(rule["expr"]) == []


def test_every_annotation_names_only_labels_the_expression_keeps() -> None:
    for rule in rules():
        expr = promql_parser.parse(rule["expr"])
        kept = set(TARGET_LABELS)
        if isinstance(expr, promql_parser.BinaryExpr):
            expr = expr.lhs
        if isinstance(expr, promql_parser.AggregateExpr) and expr.modifier is not None:
            kept = set(expr.modifier.labels)
        elif isinstance(expr, promql_parser.BinaryExpr) and isinstance(
            expr.lhs, promql_parser.AggregateExpr
        ):
            modifier = expr.lhs.modifier
            kept = set(modifier.labels) if modifier is not None else set()
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.(\w+)", text):
                assert label in kept, (rule["alert"], label, kept)


def test_the_pod_monitor_scrapes_every_service_on_its_http_port() -> None:
    (monitor,) = of_kind("production", "PodMonitor")
    (expression,) = monitor["spec"]["selector"]["matchExpressions"]
    assert expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In"
    assert monitor["spec"]["podMetricsEndpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    services = {}
    for deployment in of_kind("production", "Deployment"):
        template = deployment["spec"]["template"]
        ports = {
            port.get("name")
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        }
        if "http" in ports:  # a tutorpulse service (NATS is a StatefulSet)
            services[template["metadata"]["labels"]["app.kubernetes.io/name"]] = ports
    assert set(expression["values"]) == set(services)
    assert len(services) == 7


def test_the_dashboard_shows_what_operators_act_on_with_existing_metrics() -> None:
    (config_map,) = [
        c
        for c in of_kind("production", "ConfigMap")
        if c["metadata"]["name"] == "tutorpulse-dashboard"
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["tutorpulse.json"])
    panels = dashboard["panels"]
    titles = " | ".join(panel["title"].lower() for panel in panels)
    for topic in (
        "commands per second, by centre",
        "failed commands",
        "latency",
        "relay lag",
        "consumer pending",
        "dead letters",
        "websocket connections, by centre",
    ):
        assert topic in titles, topic
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert problems_of(target["expr"]) == [], (panel["title"], target["expr"])


def test_the_consumer_lag_alert_and_panel_cover_every_durable_consumer() -> None:
    """The projections, the scheduler and the notifier each report their consumers' backlog
    under their own ``durable``; the alert and the dashboard select every one, alert on each
    separately, and the alert says what each one's backlog means."""
    from services.consumer_pending import Consumer
    from services.notifier.service import CONSUMERS as NOTIFIER
    from services.scheduler.service import CONSUMERS as SCHEDULER
    from shared.messaging.auth import EVENTS_STREAM, PROJECTIONS_CONSUMER

    durables = [c.label for c in (Consumer(EVENTS_STREAM, PROJECTIONS_CONSUMER), *SCHEDULER)]
    durables += [c.label for c in NOTIFIER]
    assert durables == [
        "projections",
        "scheduler",
        "scheduler/TP_TIMERS",
        "notifier",
        "notifier/TP_NOTIFY",
    ]

    def covers_each(query: str) -> None:
        expr = promql_parser.parse(query)
        if isinstance(expr, promql_parser.BinaryExpr):
            expr = expr.lhs
        assert isinstance(expr, promql_parser.AggregateExpr) and expr.modifier is not None
        assert list(expr.modifier.labels) == ["durable"]
        (selector,) = selectors(expr)
        assert [m.name for m in selector.matchers.matchers] == []  # no durable left out

    (rule,) = [rule for rule in rules() if rule["alert"] == "TutorpulseProjectionLag"]
    covers_each(rule["expr"])
    for durable in durables:
        assert f"{durable}:" in rule["annotations"]["description"], durable
    (config_map,) = [
        c
        for c in of_kind("production", "ConfigMap")
        if c["metadata"]["name"] == "tutorpulse-dashboard"
    ]
    (panel,) = [
        panel
        for panel in json.loads(config_map["data"]["tutorpulse.json"])["panels"]
        if panel["title"].lower().startswith("consumer pending")
    ]
    for target in panel["targets"]:
        covers_each(target["expr"])
