"""Endpoints over REST, in process: publish a run, manage versions and keys, predict, and every
kind of bad request. The async prediction views run through Django's test client."""

from __future__ import annotations

import json

import numpy
import pytest

from engine.inference import Predictor
from tests.webapp.helpers import error_of

pytestmark = pytest.mark.django_db


def publish(client, run, name="digits"):
    response = client.post(f"/api/runs/{run.pk}/publish", {"endpoint": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def new_key(client, name="digits") -> str:
    response = client.post(f"/api/v1/endpoints/{name}/keys", {"name": "tests"}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["key"]


def predict(client, key, body, path="/api/v1/endpoints/digits/predict"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def published(client, make_run):
    run = make_run()
    version = publish(client, run)
    return run, version, new_key(client)


def test_publish_makes_an_immutable_version_with_the_input_schema(client, make_run, serving_settings):
    run = make_run()
    version = publish(client, run)
    assert version["number"] == 1 and version["state"] == "ready" and version["is_default"]
    schema = version["input_schema"]
    assert schema["inputs"]["x"]["shape"] == [None, 64]
    assert schema["inputs"]["x"]["standardization"] is not None
    assert schema["label_names"] == [str(digit) for digit in range(10)]
    detail = client.get("/api/v1/endpoints/digits").json()
    assert detail["default_version"] == 1 and detail["versions"] == [1]
    folder = serving_settings.ARTIFACT_ROOT / "endpoints" / str(detail["id"]) / "v1"
    assert sorted(path.name for path in folder.iterdir()) == ["graph.json", "manifest.json", "weights.npz"]
    # the second publish is version 2 and becomes the default
    second = client.post("/api/v1/endpoints/digits/versions", {"run": make_run().pk}, format="json")
    assert second.status_code == 201 and second.json()["number"] == 2
    assert client.get("/api/v1/endpoints/digits").json()["default_version"] == 2


def test_only_a_succeeded_run_with_a_checkpoint_is_published(client, make_run):
    response = client.post(f"/api/runs/{make_run('running').pk}/publish", {"endpoint": "digits"}, format="json")
    assert response.status_code == 409 and "succeeded" in error_of(response)["message"]
    response = client.post(f"/api/runs/{make_run(checkpoint=False).pk}/publish", {"endpoint": "digits2"},
                           format="json")
    assert response.status_code == 400 and "no checkpoint" in error_of(response)["message"]
    response = client.post(f"/api/runs/{make_run().pk}/publish", {"endpoint": "Bad Name"}, format="json")
    assert response.status_code == 400 and error_of(response)["message"].startswith("endpoint:")


def test_another_users_endpoints_and_runs_are_not_found(client, other_client, make_run, published):
    assert other_client.get("/api/v1/endpoints/digits").status_code == 404
    assert other_client.get("/api/v1/endpoints").json() == []
    response = other_client.post(f"/api/runs/{make_run().pk}/publish", {"endpoint": "mine"}, format="json")
    assert response.status_code == 404


def test_predict_matches_the_engine(client, published, digits_rows, serving_settings):
    run, version, key = published
    response = predict(client, key, {"instances": digits_rows.tolist()})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == 1 and len(body["predictions"]) == len(digits_rows)
    folder = client.get("/api/v1/endpoints/digits").json()["id"]
    version_folder = serving_settings.ARTIFACT_ROOT / "endpoints" / str(folder) / "v1"
    engine_result = Predictor.load(version_folder).predict(digits_rows)
    classes = [prediction["class"] for prediction in body["predictions"]]
    assert classes == engine_result["classes"].tolist()
    assert [prediction["label"] for prediction in body["predictions"]] == engine_result["labels"]
    probabilities = numpy.array([prediction["probabilities"] for prediction in body["predictions"]])
    numpy.testing.assert_allclose(probabilities, engine_result["probabilities"], atol=1e-6)
    # the columnar form, a numbered version, and the KServe v2 form give the same
    columns = predict(client, key, {"inputs": {"x": digits_rows.tolist()}},
                      "/api/v1/endpoints/digits/versions/1/predict")
    assert [p["class"] for p in columns.json()["predictions"]] == classes
    v2_inputs = [{"name": "x", "shape": list(digits_rows.shape), "datatype": "FP32",
                  "data": digits_rows.ravel().tolist()}]
    v2 = predict(client, key, {"id": "r1", "inputs": v2_inputs}, "/v2/models/digits/infer")
    assert v2.status_code == 200, v2.content
    outputs = {output["name"]: output for output in v2.json()["outputs"]}
    assert v2.json()["id"] == "r1" and outputs["classes"]["data"] == classes
    assert outputs["probabilities"]["shape"] == [len(digits_rows), 10]


def test_metadata_health_and_readiness(client, published):
    _, _, key = published
    health = client.get("/api/v1/endpoints/digits/health", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert health.status_code == 200 and health.json()["default_version"] == 1
    # Without a key, health reveals nothing: the same 401 for this endpoint and for one that does not exist.
    anonymous = client.get("/api/v1/endpoints/digits/health")
    unknown = client.get("/api/v1/endpoints/nope/health", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert anonymous.status_code == unknown.status_code == 401
    assert error_of(anonymous)["message"].replace("digits", "nope") == error_of(unknown)["message"]
    metadata = client.get("/api/v1/endpoints/digits/metadata", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert metadata["inputs"][0] | {"feature_names": None} == {
        "name": "x", "shape": [None, 64], "dtype": "float32", "standardized": True, "feature_names": None}
    assert metadata["source"]["run"] and metadata["label_names"][3] == "3"
    assert client.get("/api/v1/endpoints/digits/ready").status_code == 200
    assert client.get("/v2/health/live").json() == {"live": True}
    server = client.get("/v2").json()
    assert server["name"] == "netforge" and server["version"] and server["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/health/ready").status_code == 200
    model = client.get("/v2/models/digits", HTTP_X_API_KEY=key).json()
    assert model["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}]


def test_keys_are_required_shown_once_and_revocable(client, published, digits_rows):
    _, _, key = published
    body = {"instances": digits_rows[:1].tolist()}
    for bad in (None, "nfk_wrong", key + "x"):
        response = predict(client, bad, body)
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert predict(client, key, body).status_code == 200
    keys = client.get("/api/v1/endpoints/digits/keys").json()
    assert len(keys) == 1 and "key" not in keys[0] and key.startswith(keys[0]["prefix"])
    from webapp.endpoints.models import ApiKey  # noqa: PLC0415

    assert key not in json.dumps(list(ApiKey.objects.values()), default=str)  # only the hash is stored
    revoked = client.delete(f"/api/v1/endpoints/digits/keys/{keys[0]['id']}")
    assert revoked.status_code == 200 and not revoked.json()["active"]
    assert predict(client, key, body).status_code == 401


@pytest.mark.parametrize("body, status, field, says", [
    ({"instances": [[0.0] * 63]}, 400, "instances", "expected shape [N, 64]"),
    ({"instances": [[0.0] * 64, [0.0] * 63]}, 400, "instances", "different lengths"),
    ({"instances": [["a"] * 64]}, 400, "instances", "expected numbers (float32), got strings"),
    ({"instances": [[True] * 64]}, 400, "instances", "got booleans"),
    ({"instances": [[None] * 64]}, 400, "instances", "got nulls"),
    ({"instances": []}, 400, "instances", "non-empty list"),
    ({"rows": [[0.0] * 64]}, 400, "instances", "missing"),
    ({"inputs": {"z": [[0.0] * 64]}}, 400, "inputs.x", "missing"),
    ({"instances": [{"x": [0.0] * 64, "extra": 1}]}, 400, "instances[*].extra", "unknown input"),
    ({"instances": [[1e400] * 64]}, 400, "instances", "finite"),
])
def test_bad_inputs_are_400s_that_name_the_field_and_the_expected_shape(client, published, body, status, field, says):
    _, _, key = published
    response = predict(client, key, body)
    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == "invalid_input" and error["details"]["field"] == field
    assert says in error["message"], error["message"]
    if "expected shape" in says:
        assert error["details"]["shape"] == [None, 64] and error["details"]["dtype"] == "float32"


def test_bad_json_oversized_payloads_and_unknown_names(client, published, serving_settings):
    _, _, key = published
    response = client.post("/api/v1/endpoints/digits/predict", data="{not json", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400 and error_of(response)["details"]["field"] == "body"
    serving_settings.SERVING_MAX_REQUEST_BYTES = 1000
    big = predict(client, key, {"instances": [[0.0] * 64] * 20})
    assert big.status_code == 413 and error_of(big)["code"] == "too_large"
    serving_settings.SERVING_MAX_REQUEST_BYTES = 4 * 1024 * 1024
    serving_settings.SERVING_MAX_INSTANCES = 4
    many = predict(client, key, {"instances": [[0.0] * 64] * 5})
    assert many.status_code == 413 and "at most 4" in error_of(many)["message"]
    assert predict(client, key, {"instances": [[0.0] * 64]}, "/api/v1/endpoints/nope/predict").status_code == 404
    unknown_version = predict(client, key, {"instances": [[0.0] * 64]}, "/api/v1/endpoints/digits/versions/9/predict")
    assert unknown_version.status_code == 404 and "no version 9" in error_of(unknown_version)["message"]
    v2_unknown = predict(client, key, {"inputs": []}, "/v2/models/nope/infer")
    assert v2_unknown.status_code == 404 and set(v2_unknown.json()) == {"error"}
    wrong_type = predict(client, key, {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "INT64",
                                                   "data": [0] * 64}]}, "/v2/models/digits/infer")
    assert wrong_type.status_code == 400 and "expected FP32" in wrong_type.json()["error"]
    assert client.get("/api/v1/endpoints/digits/predict").status_code == 405


def test_pin_rollback_and_unpin(client, make_run, published, digits_rows):
    _, _, key = published
    publish(client, make_run())  # v2, the new default
    assert client.get("/api/v1/endpoints/digits").json()["default_version"] == 2
    rolled = client.post("/api/v1/endpoints/digits/rollback")
    assert rolled.status_code == 200 and rolled.json()["default_version"] == 1 and rolled.json()["pinned"]
    assert predict(client, key, {"instances": digits_rows[:1].tolist()}).json()["version"] == 1
    publish(client, make_run())  # v3: pinned, so the default stays at 1
    assert client.get("/api/v1/endpoints/digits").json()["default_version"] == 1
    assert client.post("/api/v1/endpoints/digits/versions/3/pin").json()["default_version"] == 3
    assert predict(client, key, {"instances": digits_rows[:1].tolist()}).json()["version"] == 3
    assert client.post("/api/v1/endpoints/digits/versions/9/pin").status_code == 400
    unpinned = client.post("/api/v1/endpoints/digits/unpin").json()
    assert unpinned["pinned"] is False and unpinned["default_version"] == 3
    versions = client.get("/api/v1/endpoints/digits/versions").json()
    assert [version["number"] for version in versions] == [3, 2, 1]


def test_metrics_json_and_prometheus(client, published, digits_rows):
    _, _, key = published
    for _ in range(3):
        assert predict(client, key, {"instances": digits_rows[:2].tolist()}).status_code == 200
    assert predict(client, key, {"instances": [[0.0]]}).status_code == 400
    metrics = client.get("/api/v1/endpoints/digits/metrics").json()
    totals = metrics["versions"]
    assert totals == [totals[0]] and totals[0]["requests"] == 4 and totals[0]["errors"] == 1
    assert totals[0]["average_batch_size"] == 2.0
    assert sum(point["requests"] for point in metrics["minutes"]) == 4
    text = client.get("/api/v1/metrics").content.decode()
    labels = '{endpoint="digits",protocol="rest",version="1"}'
    assert f"netforge_endpoint_requests_total{labels} 4.0" in text
    assert f"netforge_endpoint_errors_total{labels} 1.0" in text
    assert "netforge_endpoint_request_latency_seconds_bucket{" in text
    # batches are the version's, whatever protocol their requests came by
    assert 'netforge_endpoint_batches_total{endpoint="digits",version="1"} 3.0' in text
    assert 'netforge_endpoint_average_batch_size{endpoint="digits",version="1"} 2.0' in text


def test_onnx_download_runs_in_onnxruntime_like_the_engine(client, published, digits_rows, serving_settings):
    onnxruntime = pytest.importorskip("onnxruntime")
    response = client.get("/api/v1/endpoints/digits/versions/1/onnx")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('digits-v1.onnx"')
    session = onnxruntime.InferenceSession(response.content, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"x": digits_rows.astype(numpy.float32)})))
    folder = client.get("/api/v1/endpoints/digits").json()["id"]
    version_folder = serving_settings.ARTIFACT_ROOT / "endpoints" / str(folder) / "v1"
    engine_result = Predictor.load(version_folder).predict(digits_rows)
    numpy.testing.assert_allclose(outputs["prediction"], engine_result["outputs"]["prediction"], atol=1e-5)
    numpy.testing.assert_allclose(outputs["probabilities"], engine_result["probabilities"], atol=1e-5)


def test_onnx_export_names_an_unsupported_op(client, published, serving_settings, monkeypatch):
    from webapp.endpoints.models import ModelVersion  # noqa: PLC0415

    version = ModelVersion.objects.get(number=1)
    graph = json.loads((serving_settings.ARTIFACT_ROOT / version.path / "graph.json").read_text())
    from engine import onnx_export  # noqa: PLC0415
    from engine.serialization import read_artifact  # noqa: PLC0415

    monkeypatch.delitem(onnx_export.TRANSLATIONS, "relu")  # every catalog op translates: pretend one does not
    with pytest.raises(onnx_export.UnsupportedOp, match="node 'act1' uses op 'relu'"):
        onnx_export.export(graph, read_artifact(version.path).weights)


def test_endpoint_settings_and_delete(client, published, serving_settings):
    response = client.patch("/api/v1/endpoints/digits", {"max_batch_size": 8, "max_queue_delay_ms": 2}, format="json")
    assert response.status_code == 200 and response.json()["max_batch_size"] == 8
    assert client.patch("/api/v1/endpoints/digits", {"name": "x"}, format="json").status_code == 400
    assert client.patch("/api/v1/endpoints/digits", {"max_batch_size": 0}, format="json").status_code == 400
    endpoint_id = response.json()["id"]
    assert client.delete("/api/v1/endpoints/digits").status_code == 204
    assert not (serving_settings.ARTIFACT_ROOT / "endpoints" / str(endpoint_id)).exists()
    assert client.get("/api/v1/endpoints/digits").status_code == 404


def test_the_endpoint_names_the_grpc_port_for_its_examples(client, published, settings):
    settings.NETFORGE_GRPC_PORT = 50123
    urls = client.get("/api/v1/endpoints/digits").json()["urls"]
    assert urls["grpc_port"] == "50123" and urls["grpc_method"] == "netforge.serving.v1.PredictionService/Predict"


def test_create_endpoint_and_duplicate_names(client, other_client, serving_settings):
    created = client.post("/api/v1/endpoints", {"name": "empty"}, format="json")
    assert created.status_code == 201 and created.json()["default_version"] is None
    assert other_client.post("/api/v1/endpoints", {"name": "empty"}, format="json").status_code == 409


def _json_schema(node):
    """An OpenAPI 3.0 schema as JSON Schema (``nullable`` becomes a null type)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key not in ("nullable", "example")}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    return converted


def test_the_openapi_document_describes_the_prediction_routes_as_they_answer(client, published, digits_rows):
    import jsonschema  # noqa: PLC0415

    _, _, key = published
    document = client.get("/api/schema/?format=json").json()
    components = _json_schema(document["components"])

    def check(body, path: str, method: str, status: int) -> None:
        answer = document["paths"][path][method]["responses"][str(status)]
        schema = _json_schema(answer["content"]["application/json"]["schema"])
        jsonschema.validate(body, {**schema, "components": components})

    predict_path = "/api/v1/endpoints/{name}/predict"
    operation = document["paths"][predict_path]["post"]
    assert {"401", "400", "413", "429"} <= set(operation["responses"])
    assert {"endpointKey": []} in operation["security"]
    assert document["components"]["securitySchemes"]["endpointKey"]["scheme"] == "bearer"
    check(predict(client, key, {"instances": digits_rows[:2].tolist()}).json(), predict_path, "post", 200)
    check(predict(client, None, {"instances": digits_rows[:2].tolist()}).json(), predict_path, "post", 401)
    check(predict(client, key, {"instances": [[0.0] * 63]}).json(), predict_path, "post", 400)
    metadata = client.get("/api/v1/endpoints/digits/metadata", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    check(metadata, "/api/v1/endpoints/{name}/metadata", "get", 200)
    check(client.get("/api/v1/endpoints/digits/health").json(), "/api/v1/endpoints/{name}/health", "get", 200)
    infer = predict(client, key, {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32",
                                              "data": digits_rows[0].tolist()}]}, "/v2/models/digits/infer")
    check(infer.json(), "/v2/models/{name}/infer", "post", 200)
    check(client.get("/v2/models/digits", HTTP_X_API_KEY=key).json(), "/v2/models/{name}", "get", 200)
    with pytest.raises(jsonschema.ValidationError):  # the check can fail: an answer of another shape
        check({"predictions": "none"}, predict_path, "post", 200)


def test_v2_binary_tensor_data_through_the_django_views(client, published, digits_rows):
    """The binary extension on the Django route (the ASGI fast path has the same code: see
    test_open_inference): binary inputs, a binary and a JSON output, and the refusals."""
    _, _, key = published
    rows = digits_rows[:3].astype(numpy.float32)
    header = json.dumps({"inputs": [{"name": "x", "shape": [3, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": rows.nbytes}}],
                         "outputs": [{"name": "classes", "parameters": {"binary_data": True}},
                                     {"name": "probabilities"}]}).encode()

    def send(body: bytes, length: int | str):
        return client.post("/v2/models/digits/infer", data=body, content_type="application/octet-stream",
                           HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_INFERENCE_HEADER_CONTENT_LENGTH=str(length))

    answer = send(header + rows.tobytes(), len(header))
    assert answer.status_code == 200 and answer["Content-Type"] == "application/octet-stream"
    length = int(answer["Inference-Header-Content-Length"])
    described = json.loads(answer.content[:length])
    classes, probabilities = described["outputs"]
    assert classes == {"name": "classes", "shape": [3], "datatype": "INT64", "parameters": {"binary_data_size": 24}}
    plain = predict(client, key, {"inputs": [{"name": "x", "shape": [3, 64], "datatype": "FP32",
                                              "data": rows.ravel().tolist()}]}, "/v2/models/digits/infer").json()
    expected = {output["name"]: output["data"] for output in plain["outputs"]}
    assert numpy.frombuffer(answer.content[length:], "<i8").tolist() == expected["classes"]
    assert probabilities["data"] == expected["probabilities"]

    for body, declared, fragment in ((header + rows.tobytes()[:-4], len(header), "binary_data_size"),
                                     (header + rows.tobytes() + b"\0" * 4, len(header), "add up to"),
                                     (header, len(header) + 10, "Inference-Header-Content-Length"),
                                     (header + rows.tobytes(), "twelve", "Inference-Header-Content-Length")):
        refused = send(body, declared)
        assert refused.status_code == 400 and fragment in refused.json()["error"], refused.content
