"""``GET /api/v1/metrics`` as Prometheus scrapes it: the Accept headers it sends by default, its own
credential (a bearer token or an allow-listed network), and the operator's metrics beside the serving
counters; parsed with prometheus_client's parser."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.endpoints.test_endpoints_api import predict, published  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

# What Prometheus sends by default (scrape_protocols' order), protobuf first; and the OpenMetrics-first
# variant it sends when protobuf is off.
PROMETHEUS_ACCEPT = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
                     "q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1")
OPENMETRICS_FIRST_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
                            "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1")
METRICS_TOKEN = "scrape-secret-for-tests"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def scrape_settings(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return settings


def scrape(anonymous, accept, token=METRICS_TOKEN, **extra):
    headers = {"HTTP_ACCEPT": accept, **extra}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return anonymous.get("/api/v1/metrics", **headers)


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def samples(family) -> dict:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value for sample in family.samples}


@pytest.mark.parametrize("accept", ["text/plain", PROMETHEUS_ACCEPT, "*/*", ""])
def test_the_text_exposition_answers_prometheus_accept_headers(anonymous, scrape_settings, published, accept):  # noqa: F811
    _, _, key = published
    assert predict(anonymous, key, {"instances": [[0.0] * 64]}).status_code == 200
    response = scrape(anonymous, accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    parsed = families(response.content.decode())
    labels = (("endpoint", "digits"), ("protocol", "rest"), ("version", "1"))
    assert samples(parsed["netforge_endpoint_requests"])[("netforge_endpoint_requests_total", labels)] == 1.0
    # the operator's metrics: this process, Python, runs by state, HTTP requests by route and status code
    assert parsed["process_resident_memory_bytes"].samples[0].value > 0
    assert {"python_info", "python_gc_objects_collected", "process_cpu_seconds"} <= set(parsed)
    runs = samples(parsed["netforge_runs"])
    assert runs[("netforge_runs", (("state", "succeeded"),))] == 1.0
    requests = samples(parsed["netforge_http_requests"])
    assert requests[("netforge_http_requests_total",
                     (("method", "POST"), ("route", "endpoint-predict"), ("status", "200")))] >= 1


def test_openmetrics_when_asked_first(anonymous, scrape_settings):
    response = scrape(anonymous, OPENMETRICS_FIRST_ACCEPT)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = response.content.decode()
    assert body.rstrip().endswith("# EOF") and "process_resident_memory_bytes" in body


def test_status_codes_are_counted_apart(anonymous, scrape_settings, published):  # noqa: F811
    _, _, key = published
    assert predict(anonymous, key, {"instances": [[0.0]]}).status_code == 400
    assert predict(anonymous, "not-a-key", {"instances": [[0.0] * 64]}).status_code == 401
    requests = samples(families(scrape(anonymous, "text/plain").content.decode())["netforge_http_requests"])
    for status in ("400", "401"):
        labels = (("method", "POST"), ("route", "endpoint-predict"), ("status", status))
        assert requests[("netforge_http_requests_total", labels)] >= 1


def test_a_scrape_needs_the_metrics_token_or_an_allowed_network(anonymous, scrape_settings):
    assert scrape(anonymous, "text/plain", token=None).status_code == 401
    assert scrape(anonymous, "text/plain", token="a-wrong-token").status_code == 401
    # an allow-listed network needs no token (the test client's address is 127.0.0.1)
    scrape_settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]
    assert scrape(anonymous, "text/plain", token=None).status_code == 401
    scrape_settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.0/8")]
    response = scrape(anonymous, PROMETHEUS_ACCEPT, token=None)
    assert response.status_code == 200 and "process_cpu_seconds_total" in response.content.decode()


def test_no_token_configured_means_no_bearer_scrape(anonymous, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert scrape(anonymous, "text/plain", token="").status_code == 401
    assert scrape(anonymous, "text/plain", token=" ").status_code == 401


def test_a_users_token_sees_only_its_endpoints_and_no_process_metrics(client, published, scrape_settings):  # noqa: F811
    response = client.get("/api/v1/metrics", HTTP_ACCEPT="text/plain")
    assert response.status_code == 200, response.content
    parsed = families(response.content.decode())
    assert "netforge_endpoint_requests" in parsed
    assert "process_resident_memory_bytes" not in parsed and "netforge_runs" not in parsed


def test_the_sample_scrape_config_and_dashboard_match_what_is_served(anonymous, scrape_settings, published):  # noqa: F811
    _, _, key = published
    assert predict(anonymous, key, {"instances": [[0.0] * 64]}).status_code == 200
    config = yaml.safe_load((ROOT / "docker" / "prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/api/v1/metrics" and job["authorization"]["type"] == "Bearer"
    served = {sample.name for family in text_string_to_metric_families(scrape(anonymous, "text/plain").content.decode())
              for sample in family.samples}
    dashboard = json.loads((ROOT / "docker" / "grafana" / "netforge.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
               for name in re.findall(r"\b((?:netforge|process)_[a-z_]+)\{", target["expr"])}
    assert len(queried) >= 8 and queried <= served, queried - served
