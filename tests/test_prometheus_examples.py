"""examples/prometheus (alerting rules, their unit tests, a scrape config) and examples/grafana (a
dashboard) as Prometheus's own promtool reads them, and every series and label they name as a
running site's /metrics gives it, so that the examples cannot drift from the code."""

import json
import re
import shutil
import subprocess
import time

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from maskwatch.site.events import EventStore
from tests.conftest import ROOT
from tests.mosquitto import Broker, mosquitto_available
from tests.rtsp import refused_port
from tests.test_alert_rules import crowd
from tests.test_cameras import wait_until
from tests.test_site import SiteProcess

PROMETHEUS = ROOT / "examples" / "prometheus"
RULES = PROMETHEUS / "maskwatch-rules.yml"
DASHBOARD = ROOT / "examples" / "grafana" / "maskwatch-dashboard.json"
# The site's series not of one camera (the app's own, maskwatch_requests_total and the rest, are serve's).
SITE_WIDE = {"maskwatch_webhook_alerts", "maskwatch_notify_alerts", "maskwatch_report_messages", "maskwatch_mqtt_connected"}
# Labels Prometheus gives every series of a scrape target itself.
TARGET_LABELS = {"job", "instance"}


def promtool(*args: str, cwd=PROMETHEUS, given: str | None = None) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: the Makefile's prometheus target installs Debian's prometheus")
    return subprocess.run(["promtool", *args], cwd=cwd, input=given, capture_output=True, text=True, timeout=60)


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_targets() -> list[dict]:
    return [target for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]]


@pytest.mark.system  # promtool: `make prometheus`
def test_the_rules_are_ones_prometheus_loads_each_alert_with_its_duration_severity_and_words():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    alerts = rules()
    assert {rule["alert"] for rule in alerts} == {
        "MaskwatchSiteDown", "MaskwatchMetricsAbsent", "MaskwatchCameraDown", "MaskwatchCameraSlow",
        "MaskwatchCameraFlapping", "MaskwatchComplianceLow", "MaskwatchWebhookAlertsFailing",
        "MaskwatchNotifyAlertsFailing", "MaskwatchReportsFailing", "MaskwatchMqttDisconnected"}
    for rule in alerts:
        assert rule.get("for") and rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        if "maskwatch_camera_" in rule["expr"] and "absent(" not in rule["expr"]:  # a camera's alert names it
            assert "{{ $labels.camera }}" in rule["annotations"]["summary"], rule["alert"]


@pytest.mark.system  # promtool: `make prometheus`
def test_each_alert_fires_after_its_duration_and_not_where_it_should_not():
    """maskwatch-rules.test.yml: synthetic series for each alert (a compliance whose figure is low
    but whose interval reaches over 80 % must not fire, nor one of 3 people, nor an old failure)."""
    tested = promtool("test", "rules", "maskwatch-rules.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    cases = yaml.safe_load((PROMETHEUS / "maskwatch-rules.test.yml").read_text())["tests"]
    tested_alerts = {case["alertname"] for test in cases for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert tested_alerts == {rule["alert"] for rule in rules()}  # every alert is seen firing


@pytest.mark.system  # promtool: `make prometheus`
def test_the_scrape_config_is_one_prometheus_loads_with_its_token_file(tmp_path):
    token = tmp_path / "maskwatch.token"
    token.write_text("mw_example\n")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "/etc/prometheus/maskwatch.token" in config  # as docs/security.md and docs/deployment.md
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/maskwatch.token", str(token)))
    shutil.copy(RULES, tmp_path / RULES.name)
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    (job,) = yaml.safe_load(config)["scrape_configs"]
    assert job["job_name"] == "maskwatch" and "credentials_file" in job["authorization"]  # the rules' job


@pytest.mark.system  # promtool: `make prometheus`
def test_the_dashboard_is_one_grafana_imports_and_its_queries_are_promql(tmp_path):
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 41  # Grafana 12
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["camera"]["query"] == "label_values(maskwatch_camera_up, camera)"
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in board["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"] and "legendFormat" in target and target["refId"], panel["title"]
    # Each query as a recording rule: promtool parses it as Prometheus would ($camera is inside a string).
    recorded = [{"record": f"maskwatch:dashboard_{i}", "expr": t["expr"]} for i, t in enumerate(dashboard_targets())]
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    checked = promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr



def test_the_people_panel_says_its_unassessable_are_not_decided():
    """The panel charts maskwatch_camera_people_today by label, unassessable among them: its description
    called them all "People decided", whose sum then exceeded the API's and the report's people."""
    board = json.loads(DASHBOARD.read_text())
    (panel,) = [p for p in board["panels"] if any("people_today" in t["expr"] for t in p["targets"])]
    assert "by (label)" in panel["targets"][0]["expr"] and "People decided" not in panel["description"]
    assert "unassessable, seen but not decided" in panel["description"]

def used_series(expr: str) -> set[str]:
    return set(re.findall(r"\bmaskwatch_[a-z_]+\b", expr))


def used_labels(expr: str) -> dict[str, list[str]]:
    """Each label a query names (in a matcher, by/on/without) with the literal values it matches."""
    labels: dict[str, list[str]] = {}
    for name, operator, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', expr):
        labels.setdefault(name, []).extend(value.split("|") if "$" not in value else [])
    for grouped in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
        for name in filter(None, (n.strip() for n in grouped.split(","))):
            labels.setdefault(name, [])
    return labels


@pytest.fixture(scope="module")
def exposition(tmp_path_factory) -> str:
    """/metrics of `maskwatch run` with every optional part: a camera, alerts.notify, reports, MQTT
    (a real mosquitto) and people today (so that the compliance gauges are there)."""
    if not mosquitto_available():
        pytest.fail("mosquitto is missing: the Makefile's mqtt-broker target installs Debian's mosquitto")
    folder = tmp_path_factory.mktemp("prometheus-site")
    broker = Broker(folder).start()
    try:
        site = SiteProcess(folder, f"""
  door: {{name: Front door, source: "rtsp://127.0.0.1:{refused_port()}/none", fps: 3}}
""", extra=f"""alerts:
  notify: [{{urls: 'json://127.0.0.1:{refused_port()}/hook'}}]
reports: [{{urls: 'json://127.0.0.1:{refused_port()}/report', at: '18:00'}}]
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
""")
        try:
            store = EventStore(str(folder / "site.db"))
            crowd(store, masked=6, unmasked=4, when=time.time())
            store.close()
            assert wait_until(lambda: "maskwatch_mqtt_connected 1.0" in site.get("/metrics").text, 30)
            text = site.get("/metrics").text
            assert httpx.get(site.base + "/metrics", timeout=10).status_code == 401  # the token is needed
        finally:
            site.stop()
    finally:
        broker.stop()
    return text


@pytest.fixture(scope="module")
def scraped(exposition):
    """The exposition's samples by their series name (a counter's with its `_total`)."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


@pytest.mark.system
def test_every_series_and_label_the_examples_use_is_in_a_sites_metrics(scraped):
    queries = [(rule["alert"], rule["expr"], " ".join(rule["annotations"].values())) for rule in rules()]
    queries += [(t["expr"], t["expr"], t["legendFormat"]) for t in dashboard_targets()]
    for name, expr, words in queries:
        series = used_series(expr)
        if not series:  # Prometheus's own series of the scrape: the site as a whole
            assert expr == 'up{job="maskwatch"} == 0', name
            continue
        missing = series - set(scraped)
        assert not missing, f"{name}: a site's /metrics has no {sorted(missing)}"
        known: dict[str, set] = {label: set() for label in TARGET_LABELS}
        for sample in (s for metric in series for s in scraped[metric]):
            for label, value in sample.labels.items():
                known.setdefault(label, set()).add(value)
        named = used_labels(expr)
        for label in re.findall(r"\$labels\.(\w+)", words) + re.findall(r"\{\{\s*(\w+)\s*\}\}", words):
            named.setdefault(label, [])
        for label, values in named.items():
            assert label in known, f"{name}: {sorted(series)} carry no label {label!r}"
            if label not in TARGET_LABELS:
                assert set(values) <= known[label], f"{name}: {label} is one of {sorted(known[label])}, not {values}"
    (target,) = scraped["maskwatch_camera_fps_target"]
    assert target.labels == {"camera": "door"} and target.value == 3.0  # the camera's fps, as its file says


@pytest.mark.system  # promtool: `make prometheus`
def test_the_metrics_pass_promtools_lint_and_the_counts_since_the_start_are_counters(exposition):
    """Reconnects and deliveries, counts that only grow until a restart, were gauges: increase()
    read a restart's fall to 0 as a fall, not a counter reset, and their names lacked `_total`."""
    checked = promtool("check", "metrics", given=exposition)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
    families = {family.name: family for family in text_string_to_metric_families(exposition)
                if family.name.startswith("maskwatch_camera_") or family.name in SITE_WIDE}
    assert {name for name, family in families.items() if family.type == "counter"} == {
        "maskwatch_camera_reconnects", "maskwatch_camera_people_dropped", "maskwatch_webhook_alerts",
        "maskwatch_notify_alerts", "maskwatch_report_messages"}
    for name, family in families.items():
        assert ("since the start" in family.documentation) == (family.type == "counter"), name
        assert family.type in {"counter", "gauge"}, name
        suffix = "_total" if family.type == "counter" else ""
        assert family.samples and {sample.name for sample in family.samples} == {name + suffix}, name
