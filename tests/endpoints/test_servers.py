"""Endpoints against the real server: uvicorn serving REST and, from the same process and runtime,
gRPC, over one SQLite file and one model store, through real sockets and real gRPC channels.

The model is the session's trained digits MLP, attached to a succeeded run in the platform's
database and published through the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import httpx
import numpy
import pytest

from engine.inference import Predictor
from tests.platform.harness import Platform, Service, free_port, wait_until
from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc

pytestmark = pytest.mark.xdist_group("serving-servers")


@pytest.fixture(scope="module")
def servers():
    home = Path(tempfile.mkdtemp(prefix="netforge-serving-"))
    system = Platform(home)
    system.env["NETFORGE_SERVING_REFRESH_SECONDS"] = "0.5"
    try:
        system.start_database()
        system.migrate()
        system.start_web(grpc=True)
        yield system
    finally:
        started = [service for service in (system.web, system.postgres) if service is not None]
        for service in started:
            service.stop()
        Service._all[:] = [service for service in Service._all if service not in started]
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def owner(servers, django_db_blocker, trained_digits):
    """A user with an API token and a succeeded digits run (``owner["runs"]()`` makes another)."""
    with django_db_blocker.unblock(), servers.database_connection():
        from django.contrib.auth import get_user_model  # noqa: PLC0415

        from engine import zoo  # noqa: PLC0415
        from webapp.core.services import api_token_create  # noqa: PLC0415
        from webapp.datasets.services import dataset_create_builtin  # noqa: PLC0415
        from webapp.projects.models import GraphVersion  # noqa: PLC0415
        from webapp.projects.services import project_create  # noqa: PLC0415
        from webapp.runs.models import Checkpoint, Run  # noqa: PLC0415

        user = get_user_model().objects.create_user(username=f"u-{uuid.uuid4().hex[:8]}", password="x" * 12)
        token = api_token_create(user=user, name="tests")[1]
        project = project_create(owner=user, name="digits")
        graph = GraphVersion.objects.create(project=project, number=1, editor_document={}, spec=zoo.load("mlp"),
                                            created_by=user)
        dataset = dataset_create_builtin(owner=user, builtin="digits")

        def make_run(*, slow: bool = False, slower: bool = False) -> int:
            """A succeeded run with the trained digits checkpoint, or (``slow``) an untrained wide
            MLP on the same inputs whose forward pass of 1,024 instances takes about 20 ms, or
            (``slower``) a deeper one that takes about 200 ms."""
            with django_db_blocker.unblock(), servers.database_connection():
                run = Run.objects.create(project=project, graph_version=graph, dataset=dataset, created_by=user,
                                         state="succeeded", epochs_completed=2)
                folder = servers.home / "artifacts" / "runs" / str(run.pk) / "epoch-0002"
                if slow or slower:
                    write_wide_model(folder, trained_digits, **({"hidden": 2048, "layers": 3} if slower else {}))
                else:
                    shutil.copytree(trained_digits, folder)
                Checkpoint.objects.create(run=run, epoch=2, step=1, path=str(folder))
                return run.pk

    api = httpx.Client(base_url=servers.base_url, headers={"Authorization": f"Token {token}"}, timeout=30)
    yield {"api": api, "make_run": make_run}
    api.close()


def write_wide_model(folder: Path, digits_checkpoint: Path, *, hidden: int = 4096, layers: int = 1) -> None:
    from engine import serialization  # noqa: PLC0415
    from engine.model import Model  # noqa: PLC0415
    from tests.platform.harness import mlp_spec  # noqa: PLC0415

    spec = mlp_spec(64, 10, hidden=hidden, layers=layers)
    schema = serialization.read_artifact(digits_checkpoint).manifest["input_schema"]
    serialization.write_artifact(folder, spec=spec, weights=Model(spec).state_arrays(), input_schema=schema)


def publish(owner, name: str, *, slow: bool = False, slower: bool = False, **settings) -> str:
    """A new endpoint with the digits model as v1; returns a fresh API key."""
    api = owner["api"]
    assert api.post("/api/v1/endpoints", json={"name": name, **settings}).status_code == 201
    response = api.post(f"/api/v1/endpoints/{name}/versions", json={"run": owner["make_run"](slow=slow, slower=slower)})
    assert response.status_code == 201, response.text
    created = api.post(f"/api/v1/endpoints/{name}/keys", json={"name": "test"})
    return created.json()["key"]


def tensor(array: numpy.ndarray) -> predict_pb2.Tensor:
    return predict_pb2.Tensor(dtype=str(array.dtype), shape=array.shape, content=array.tobytes())


def from_tensor(message: predict_pb2.Tensor) -> numpy.ndarray:
    return numpy.frombuffer(message.content, dtype=numpy.dtype(message.dtype).newbyteorder("<")).reshape(message.shape)


def grpc_predict(stub, name: str, key: str | None, array, *, version: int = 0, field: str = "x"):
    metadata = (("authorization", f"Bearer {key}"),) if key else ()
    return stub.Predict(predict_pb2.PredictRequest(endpoint=name, version=version, inputs={field: tensor(array)}),
                        metadata=metadata, timeout=30)


@pytest.fixture
def stub(servers):
    with grpc.insecure_channel(servers.grpc_target) as channel:
        yield predict_pb2_grpc.PredictionServiceStub(channel)


def test_rest_and_grpc_answer_like_the_engine_and_refuse_what_they_should(servers, owner, stub, digits_rows):
    key = publish(owner, "digits")
    rows = digits_rows.astype(numpy.float32)
    endpoint_id = owner["api"].get("/api/v1/endpoints/digits").json()["id"]
    expected = Predictor.load(servers.home / "artifacts" / "endpoints" / str(endpoint_id) / "v1").predict(rows)

    rest = httpx.post(f"{servers.base_url}/api/v1/endpoints/digits/predict", json={"instances": rows.tolist()},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert rest.status_code == 200, rest.text
    assert [p["class"] for p in rest.json()["predictions"]] == expected["classes"].tolist()
    numpy.testing.assert_allclose([p["probabilities"] for p in rest.json()["predictions"]], expected["probabilities"],
                                  atol=1e-6)

    answer = grpc_predict(stub, "digits", key, rows)
    assert answer.version == 1 and list(answer.labels) == expected["labels"]
    numpy.testing.assert_array_equal(from_tensor(answer.outputs["classes"]), expected["classes"])
    numpy.testing.assert_allclose(from_tensor(answer.outputs["probabilities"]), expected["probabilities"], atol=1e-6)
    numpy.testing.assert_allclose(from_tensor(answer.outputs["prediction"]), expected["outputs"]["prediction"],
                                  atol=1e-5)

    def status_of(call) -> tuple:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        return caught.value.code(), caught.value.details()

    assert status_of(lambda: grpc_predict(stub, "digits", None, rows))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert status_of(lambda: grpc_predict(stub, "digits", "nfk_wrong", rows))[0] == grpc.StatusCode.UNAUTHENTICATED
    code, details = status_of(lambda: grpc_predict(stub, "digits", key, rows[:, :63]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "inputs.x.shape: expected shape [N, 64]" in details
    code, details = status_of(lambda: grpc_predict(stub, "digits", key, rows.astype(numpy.float64)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "expected 'float32', got 'float64'" in details
    code, details = status_of(lambda: grpc_predict(stub, "digits", key, rows, field="pixels"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "inputs.x: missing" in details
    broken = predict_pb2.Tensor(dtype="float32", shape=[2, 64], content=b"\0" * 10)
    code, details = status_of(lambda: stub.Predict(predict_pb2.PredictRequest(endpoint="digits", inputs={"x": broken}),
                                                   metadata=(("authorization", f"Bearer {key}"),)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "holds 10 bytes" in details
    assert status_of(lambda: grpc_predict(stub, "nope", key, rows))[0] == grpc.StatusCode.NOT_FOUND
    code, details = status_of(lambda: grpc_predict(stub, "digits", key, rows, version=7))
    assert code == grpc.StatusCode.NOT_FOUND and "no version 7" in details
    oversized = numpy.zeros((20000, 64), numpy.float32)  # 5 MB, over the 4 MiB limit
    assert status_of(lambda: grpc_predict(stub, "digits", key, oversized))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The same refusals from the real ASGI server's prediction fast path (webapp/endpoints/asgi.py).
    def rest_error(content, key_header: dict, path: str = "/api/v1/endpoints/digits/predict") -> tuple[int, dict]:
        response = httpx.post(f"{servers.base_url}{path}", content=content, timeout=30,
                              headers={"Content-Type": "application/json", **key_header})
        return response.status_code, response.json().get("error", response.json())

    body = json.dumps({"instances": rows[:2].tolist()})
    assert rest_error(body, {})[0] == 401
    assert rest_error(body, {"Authorization": "Bearer nfk_wrong"})[0] == 401
    status, error = rest_error(json.dumps({"instances": rows[:2, :63].tolist()}), {"Authorization": f"Bearer {key}"})
    assert status == 400 and error["details"]["field"] == "instances" and "expected shape [N, 64]" in error["message"]
    status, error = rest_error(json.dumps({"instances": [["a"] * 64]}), {"Authorization": f"Bearer {key}"})
    assert status == 400 and "expected numbers (float32), got strings" in error["message"]
    status, error = rest_error(b"{not json", {"Authorization": f"Bearer {key}"})
    assert status == 400 and "JSON" in error["message"]
    status, _ = rest_error(json.dumps({"inputs": [{"name": "x", "shape": [1, 63], "datatype": "FP32",
                                                    "data": [0.0] * 63}]}),
                           {"Authorization": f"Bearer {key}"}, path="/v2/models/digits/infer")
    assert status == 400
    too_big = httpx.post(f"{servers.base_url}/api/v1/endpoints/digits/predict",
                         content=b"[" + b"0," * 2_200_000 + b"0]",
                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, timeout=30)
    assert too_big.status_code == 413

    # a key revoked through the REST API stops working over gRPC at once (one runtime, told of it)
    key_id = owner["api"].get("/api/v1/endpoints/digits/keys").json()[0]["id"]
    assert owner["api"].delete(f"/api/v1/endpoints/digits/keys/{key_id}").status_code == 200
    assert status_of(lambda: grpc_predict(stub, "digits", key, rows[:1]))[0] == grpc.StatusCode.UNAUTHENTICATED


def test_a_version_published_under_load_loses_no_request(servers, owner, digits_rows):
    key = publish(owner, "under-load")
    row = digits_rows[:1].astype(numpy.float32)
    # A just-published endpoint answers at once on both servers (each reads the routes again when a
    # request names an endpoint, key or version it does not know yet).
    with httpx.Client(base_url=servers.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client, \
            grpc.insecure_channel(servers.grpc_target) as channel:
        assert grpc_predict(predict_pb2_grpc.PredictionServiceStub(channel), "under-load", key, row).version == 1
        response = client.post("/api/v1/endpoints/under-load/predict", json={"instances": row.tolist()})
        assert response.status_code == 200 and response.json()["version"] == 1
    stop = threading.Event()
    outcomes = {"rest": [], "grpc": []}

    def rest_load():
        with httpx.Client(base_url=servers.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            while not stop.is_set():
                response = client.post("/api/v1/endpoints/under-load/predict", json={"instances": row.tolist()})
                outcomes["rest"].append(response.json()["version"] if response.status_code == 200 else response.text)

    def grpc_load():
        with grpc.insecure_channel(servers.grpc_target) as channel:
            client = predict_pb2_grpc.PredictionServiceStub(channel)
            while not stop.is_set():
                try:
                    outcomes["grpc"].append(grpc_predict(client, "under-load", key, row).version)
                except grpc.RpcError as error:
                    outcomes["grpc"].append(f"{error.code()}: {error.details()}")

    threads = [threading.Thread(target=target) for target in (rest_load, grpc_load)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        response = owner["api"].post("/api/v1/endpoints/under-load/versions", json={"run": owner["make_run"]()})
        assert response.status_code == 201, response.text

        def both_moved():
            return outcomes["rest"][-1:] == [2] and outcomes["grpc"][-1:] == [2]

        wait_until(both_moved, timeout=15, what="both servers to answer with version 2")
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    for protocol, answers in outcomes.items():
        failures = [answer for answer in answers if answer not in (1, 2)]
        assert not failures, f"{protocol}: {failures[:3]}"
        assert answers.index(2) > 0 and set(answers[answers.index(2):]) == {2}, protocol  # never back to 1


def test_a_full_queue_is_refused_fast(servers, owner):
    # The deeper model: the queue must still hold a request when the next arrives. With the wide one
    # (about 1 ms a forward once ReLU was compiled) the REST requests, each a 16k-number JSON body,
    # sometimes arrived slower than they were answered on a loaded machine, and none was refused.
    key = publish(owner, "tiny-queue", slower=True, max_batch_size=1, max_queue_size=1, max_queue_delay_ms=0)
    big = numpy.random.default_rng(0).random((256, 64), dtype=numpy.float32)  # a slow forward each

    async def burst():
        async with grpc.aio.insecure_channel(servers.grpc_target) as channel:
            client = predict_pb2_grpc.PredictionServiceStub(channel)
            request = predict_pb2.PredictRequest(endpoint="tiny-queue", inputs={"x": tensor(big)})
            metadata = (("authorization", f"Bearer {key}"),)

            async def one():
                started = time.perf_counter()
                try:
                    await client.Predict(request, metadata=metadata, timeout=30)
                    return "ok", time.perf_counter() - started
                except grpc.aio.AioRpcError as error:
                    return error.code(), time.perf_counter() - started

            return await asyncio.gather(*(one() for _ in range(16)))

    grpc_results = asyncio.run(burst())
    refused = [seconds for code, seconds in grpc_results if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert refused and any(code == "ok" for code, _ in grpc_results), grpc_results
    assert {code for code, _ in grpc_results} <= {"ok", grpc.StatusCode.RESOURCE_EXHAUSTED}

    async def rest_burst():
        async with httpx.AsyncClient(base_url=servers.base_url, headers={"Authorization": f"Bearer {key}"},
                                     timeout=30) as client:
            body = {"inputs": {"x": big.tolist()}}
            responses = await asyncio.gather(*(client.post("/api/v1/endpoints/tiny-queue/predict", json=body)
                                               for _ in range(12)))
            return [response.status_code for response in responses]

    statuses = asyncio.run(rest_burst())
    assert set(statuses) <= {200, 429} and 429 in statuses, statuses


def test_rest_and_grpc_requests_arriving_together_share_one_batch(servers, owner):
    """One model cache and one batcher behind both protocols. A slow model is kept busy by two
    gRPC requests of 1,024 instances (a batch each, about 200 ms each: a batch holds at most 1,024);
    a REST request and a gRPC request of one instance sent meanwhile wait in the same queue and
    run as one batch of 2. With a batcher per protocol they would run as two batches of 1."""
    key = publish(owner, "shared-batch", slower=True, max_batch_size=1024, max_queue_delay_ms=0)
    rng = numpy.random.default_rng(0)
    big, row = rng.random((1024, 64), dtype=numpy.float32), rng.random((1, 64), dtype=numpy.float32)
    metadata = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(servers.grpc_target) as channel, \
            httpx.Client(base_url=servers.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as rest:
        stub = predict_pb2_grpc.PredictionServiceStub(channel)
        assert grpc_predict(stub, "shared-batch", key, row).version == 1  # loaded, routes and key known: 1 batch
        assert rest.get("/api/v1/endpoints/shared-batch/health").status_code == 200  # the connection is open
        busy = [stub.Predict.future(predict_pb2.PredictRequest(endpoint="shared-batch", inputs={"x": tensor(big)}),
                                    metadata=metadata, timeout=60) for _ in range(2)]
        time.sleep(0.1)  # both big ones have arrived, the first is running
        assert not busy[0].done(), "the big requests were answered before the small ones came: inconclusive"
        single = stub.Predict.future(predict_pb2.PredictRequest(endpoint="shared-batch", inputs={"x": tensor(row)}),
                                     metadata=metadata, timeout=60)
        answer = rest.post("/api/v1/endpoints/shared-batch/predict", json={"instances": row.tolist()})
        assert answer.status_code == 200, answer.text
        assert single.result().version == 1 and all(future.result().version == 1 for future in busy)

    def counted():
        totals = owner["api"].get("/api/v1/endpoints/shared-batch/metrics").json()["versions"]
        return {row["protocol"]: row for row in totals} if sum(row["requests"] for row in totals) == 5 else None

    wait_until(counted, timeout=10, what="the metrics of the 5 requests to reach the database")
    totals = counted()
    assert totals["grpc"]["requests"] == 4 and totals["rest"]["requests"] == 1
    text = owner["api"].get("/api/v1/metrics").text
    batches = re.search(r'netforge_endpoint_batches_total\{endpoint="shared-batch",version="1"\} (\S+)', text).group(1)
    # the warm-up, the two big ones, and the REST and gRPC pair together
    assert float(batches) == 4, f"{batches} batches: the REST and gRPC requests did not share one"
    average = (1 + 2 * 1024 + 2) / 4
    assert totals["rest"]["average_batch_size"] == totals["grpc"]["average_batch_size"] == pytest.approx(average)


@contextlib.contextmanager
def extra_web_servers(servers, name: str, count: int, **env):
    """``count`` more uvicorn processes over the module's database, with ``env`` added, logging to
    ``<name>-<index>.log``; stopped and forgotten after the block."""
    started = [Service(f"{name}-{index}", [sys.executable, "-m", "uvicorn", "webapp.asgi:application", "--host",
                                              "127.0.0.1", "--port", "0", "--lifespan", "on"],
                       env={**servers.env, **env}, log_dir=servers.logs).start() for index in range(count)]
    try:
        yield started
    finally:
        for web in started:
            web.stop()
        Service._all[:] = [service for service in Service._all if service not in started]


def test_a_grpc_port_already_taken_stops_the_server_with_the_port_named(servers):
    """The ASGI server's startup fails, naming the address and what to do, instead of serving REST
    without the gRPC it was asked for."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with extra_web_servers(servers, "web-port-taken", 1, NETFORGE_GRPC_PORT=str(port)) as (web,):
            web.process.wait(timeout=60)
    assert web.process.returncode != 0
    assert f"the gRPC server could not listen on 127.0.0.1:{port}" in web.log_text(), web.log_text()[-3000:]
    assert "NETFORGE_GRPC_PORT" in web.log_text()


def test_two_web_processes_share_the_grpc_port_with_reuse_port(servers, owner, digits_rows):
    """``uvicorn --workers N``: with NETFORGE_GRPC_REUSE_PORT=1 a second process of the same server
    listens on the same gRPC port (each with its own runtime; without it, the second fails to start,
    as the test above shows), and calls on fresh connections, which the kernel spreads over the two,
    are answered."""
    key = publish(owner, "reuse-port")
    port = free_port()
    with extra_web_servers(servers, "web-reuse", 2, NETFORGE_GRPC_PORT=str(port),
                           NETFORGE_GRPC_REUSE_PORT="1") as processes:
        for web in processes:
            web.wait_for_log(f"gRPC server listening on 127.0.0.1:{port}")
        for _ in range(8):
            with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
                stub = predict_pb2_grpc.PredictionServiceStub(channel)
                assert grpc_predict(stub, "reuse-port", key, digits_rows[:1].astype(numpy.float32)).version == 1
        assert all(web.alive for web in processes)


def test_grpc_health_and_reflection(servers):
    """The standard services beside Predict: grpc.health.v1 answers SERVING for the server and the
    prediction service (NOT_FOUND for another), and server reflection lists the services and
    serves the prediction service's descriptor, which is what grpcurl needs instead of the proto."""
    from google.protobuf import descriptor_pb2  # noqa: PLC0415
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: PLC0415

    with grpc.insecure_channel(servers.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "netforge.serving.v1.PredictionService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol="netforge.serving.v1.PredictionService")]
        listed, described = list(reflection.ServerReflectionInfo(iter(requests), timeout=10))
    names = {service.name for service in listed.list_services_response.service}
    assert {"netforge.serving.v1.PredictionService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= names, names
    files = [descriptor_pb2.FileDescriptorProto.FromString(raw)
             for raw in described.file_descriptor_response.file_descriptor_proto]
    methods = {method.name for file in files for service in file.service for method in service.method}
    assert {"Predict", "GetMetadata"} <= methods, methods


def test_grpc_health_turns_not_serving_when_the_server_stops(servers):
    """On SIGTERM the health service tells its watchers NOT_SERVING before the server stops taking
    calls, so a balancer or probe stops sending new ones first."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415

    port = free_port()
    with extra_web_servers(servers, "web-health", 1, NETFORGE_GRPC_PORT=str(port)) as (web,):
        web.wait_for_log("gRPC server listening")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="netforge.serving.v1.PredictionService"), timeout=30)
            statuses = [next(watch).status]
            web.process.send_signal(signal.SIGTERM)
            try:
                for answer in watch:
                    statuses.append(answer.status)
            except grpc.RpcError:
                pass  # the stream ends when the server stops
        assert statuses[:2] == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING], \
            statuses
        web.process.wait(timeout=30)
        assert "gRPC server stopped" in web.log_text()
