"""The platform on PostgreSQL, the database of ``docker/compose.yaml`` and of any deployment past
one machine (the other platform tests use SQLite): a throwaway PostgreSQL cluster (Debian's
server, which ``make test`` installs), the migrations and the demo, Redis, uvicorn serving REST,
WebSockets and gRPC, and a Celery worker. Everything goes through the public interfaces, as a
script would: a token from the demo login, a run over REST streamed over a WebSocket, the record
read back, the run published, the endpoint called over REST and gRPC, and the serving metrics
(written by a ``select_for_update`` upsert) read back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import httpx
import numpy
import pytest

from tests.platform.harness import ROOT, Platform, RunSocket, Service, start_postgres, wait_until
from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc

pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture(scope="module")
def on_postgres():
    home = Path(tempfile.mkdtemp(prefix="netforge-postgres-"))
    system = Platform(home)
    started: list[Service] = []
    try:
        postgres, url = start_postgres(home, system.logs)
        started.append(postgres)
        system.env["DATABASE_URL"] = url
        system.start_redis()
        started.append(system.redis)
        system.migrate()
        demo = subprocess.run([sys.executable, "manage.py", "netforge_demo"], cwd=ROOT, env=system.env,
                              capture_output=True, text=True, timeout=120)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        system.start_web(grpc=True)
        started.append(system.web)
        system.start_worker()
        started.append(system.worker)
        yield system
    finally:
        for service in reversed(started):
            service.stop()
        Service._all[:] = [service for service in Service._all if service not in started]
        shutil.rmtree(home, ignore_errors=True)


def test_train_stream_publish_and_serve_on_postgresql(on_postgres):
    base = on_postgres.base_url
    login = httpx.post(f"{base}/api/auth/token/", json={"username": "demo", "password": "netforge-demo"}, timeout=30)
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30)

    projects = api.get("/api/projects").json()["results"]
    project = next(project for project in projects if project["name"] == "Digits")
    graph = api.get(f"/api/projects/{project['id']}/versions").json()["results"][0]
    datasets = api.get("/api/datasets").json()["results"]
    dataset = next(dataset for dataset in datasets if dataset["builtin_name"] == "digits")
    created = api.post(f"/api/projects/{project['id']}/runs", json={
        "graph_version": graph["id"], "dataset": dataset["id"],
        "hyperparameters": {"epochs": 3, "batch_size": 64, "optimizer": {"name": "adam", "lr": 0.01}}})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]

    with RunSocket(f"{on_postgres.ws_url}/ws/runs/{run_id}/?token={token}") as socket:
        state = socket.receive_until_finished(timeout=120)
    run = api.get(f"/api/runs/{run_id}").json()
    assert state == "succeeded", (run["error"], on_postgres.logs_text()[-6000:])
    assert run["state"] == "succeeded" and run["epochs_completed"] == 3, run
    assert run["final_metrics"]["val_accuracy"] > 0.9, run["final_metrics"]
    # every stored point reached the socket, once, in sequence
    assert sorted(point["seq"] for point in socket.points) == list(range(1, run["last_sequence"] + 1))
    assert len(api.get(f"/api/runs/{run_id}/checkpoints").json()) == 3

    published = api.post(f"/api/runs/{run_id}/publish", json={"endpoint": "digits-pg"})
    assert published.status_code == 201, published.text
    key = api.post("/api/v1/endpoints/digits-pg/keys", json={"name": "test"}).json()["key"]
    rows = numpy.random.default_rng(0).uniform(0, 16, size=(5, 64)).astype(numpy.float32)
    rest = httpx.post(f"{base}/api/v1/endpoints/digits-pg/predict", json={"instances": rows.tolist()},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert rest.status_code == 200, rest.text
    with grpc.insecure_channel(on_postgres.grpc_target) as channel:
        answer = predict_pb2_grpc.PredictionServiceStub(channel).Predict(
            predict_pb2.PredictRequest(endpoint="digits-pg", inputs={
                "x": predict_pb2.Tensor(dtype="float32", shape=rows.shape, content=rows.tobytes())}),
            metadata=(("authorization", f"Bearer {key}"),), timeout=30)
    classes = numpy.frombuffer(answer.outputs["classes"].content, dtype=answer.outputs["classes"].dtype)
    assert classes.tolist() == [prediction["class"] for prediction in rest.json()["predictions"]]

    def counted():
        totals = api.get("/api/v1/endpoints/digits-pg/metrics").json()["versions"]
        return {row["protocol"]: row["requests"] for row in totals} == {"rest": 1, "grpc": 1}

    wait_until(counted, timeout=15, what="the serving metrics of both calls in PostgreSQL")
    text = api.get("/api/v1/metrics").text
    assert 'netforge_endpoint_requests_total{endpoint="digits-pg",protocol="grpc",version="1"} 1.0' in text

    # A second, longer run: cancelled mid-way, resumed from its checkpoint, finished (row locks).
    second = api.post(f"/api/projects/{project['id']}/runs", json={
        "graph_version": graph["id"], "dataset": dataset["id"],
        "hyperparameters": {"epochs": 40, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 0.01}}}).json()
    with RunSocket(f"{on_postgres.ws_url}/ws/runs/{second['id']}/?token={token}") as socket:
        socket.receive_until(lambda s: any(p["name"] == "epoch_loss" for p in s.points), timeout=60,
                             what="the second run's first epoch")
        assert api.post(f"/api/runs/{second['id']}/cancel").status_code == 200
        assert socket.receive_until_finished(timeout=30) == "cancelled"
    resumed = api.post(f"/api/runs/{second['id']}/resume")
    assert resumed.status_code == 200, resumed.text

    def running_again():
        return api.get(f"/api/runs/{second['id']}").json()["state"] == "running"

    wait_until(running_again, timeout=60, what="the resumed run to run")
    assert api.post(f"/api/runs/{second['id']}/cancel").status_code == 200
    wait_until(lambda: api.get(f"/api/runs/{second['id']}").json()["state"] == "cancelled", timeout=30,
               what="the resumed run to be cancelled")
    record = api.get(f"/api/runs/{second['id']}").json()
    assert record["attempt"] == 2 and record["epochs_completed"] >= 1, record

    # Tags (PostgreSQL's JSON containment) and ordering by a value of the final metrics.
    assert api.patch(f"/api/runs/{run_id}", json={"tags": ["baseline", "pg"]}).status_code == 200
    assert api.patch(f"/api/runs/{second['id']}", json={"tags": ["pg"]}).status_code == 200
    tagged = api.get("/api/runs", params={"tag": "baseline"}).json()["results"]
    assert [listed["id"] for listed in tagged] == [run_id]
    ordered = api.get("/api/runs", params={"tag": "pg", "ordering": "-final_metrics__val_accuracy"}).json()["results"]
    assert [listed["id"] for listed in ordered][0] == run_id and len(ordered) == 2
