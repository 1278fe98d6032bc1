"""Datasets over REST: built-ins, uploads read by the engine, limits, ownership.

These tests convert uploads in the test process's own child (DATASET_CONVERSION_INLINE, the test
settings' default), so an upload is answered ready or failed; tests/platform/test_dataset_conversion.py
runs them through the worker of the ``datasets`` queue."""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image as image_module

from engine import data as engine_data
from tests.webapp.helpers import error_of
from webapp.datasets.models import Dataset
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db

IRIS_LIKE_CSV = b"sepal,petal,species\n5.1,1.4,setosa\n4.9,1.3,setosa\n6.3,4.9,virginica\n5.8,5.1,virginica\n"


def upload(client, name: str, content: bytes, **fields):
    return client.post("/api/datasets/upload", {"file": SimpleUploadedFile(name, content), **fields},
                       format="multipart")


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def loads_as_the_worker_does(dataset: Dataset) -> engine_data.Dataset:
    """workers.training.load_dataset reads a stored upload with engine.data.load and the stored options."""
    return engine_data.load(Path(dataset.file.path), **dataset.options)


def test_builtin_datasets_are_listed(client):
    response = client.get("/api/datasets/builtin")
    assert response.status_code == 200
    digits = next(entry for entry in response.json()["results"] if entry["name"] == "digits")
    assert digits["shapes"] == {"x": [64], "y": []}


def test_a_dataset_from_a_builtin_has_its_schema(client):
    response = client.post("/api/datasets", {"builtin": "moons", "options": {"n_samples": 200, "seed": 3}},
                           format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "moons" and body["kind"] == "builtin" and body["rows"] == 200
    assert body["schema"]["arrays"]["x"] == {"shape": [2], "dtype": "float32"}
    assert body["schema"]["num_classes"] == 2 and body["preview"]["rows"] == 5
    assert client.get("/api/datasets").json()["results"][0]["id"] == body["id"]


@pytest.mark.parametrize(("body", "words"), [
    ({"builtin": "mnist-but-not-here"}, "unknown built-in dataset 'mnist-but-not-here'"),
    ({"builtin": "moons", "options": {"n_samples": -5}}, "n_samples"),
    ({"builtin": "moons", "options": {"colour": "red"}}, "no option(s) ['colour']"),
    ({}, "builtin: This field is required."),
    ({"builtin": "moons", "project": 999}, "unknown project 999"),
])
def test_unknown_builtins_and_options_are_a_400(client, body, words):
    response = client.post("/api/datasets", body, format="json")
    assert response.status_code == 400
    assert words in error_of(response)["message"]
    assert not Dataset.objects.exists()


def test_a_csv_upload_is_read_by_the_engine_and_stored(client, settings):
    response = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="species")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["file_format"] == "csv" and body["rows"] == 4 and body["name"] == "flowers"
    assert body["schema"]["arrays"]["x"]["shape"] == [2] and body["schema"]["label_names"] == ["setosa", "virginica"]
    assert body["schema"]["feature_names"] == ["sepal", "petal"]
    assert body["preview"]["arrays"]["x"][0] == pytest.approx([5.1, 1.4])
    assert body["state"] == "ready" and body["error"] == "" and len(body["content_hash"]) == 64
    dataset = Dataset.objects.get(pk=body["id"])
    assert len(loads_as_the_worker_does(dataset)) == 4
    # the upload as it came, and the converted store (one .npy per array and the manifest)
    names = sorted(path.name for path in stored_files(settings))
    assert names == ["flowers.csv", "manifest.json", "x.npy", "y.npy"]
    assert body["size_bytes"] == sum(path.stat().st_size for path in stored_files(settings)
                                     if path.name != "manifest.json")


def test_a_csv_with_text_in_a_numeric_column_names_line_and_column(client, settings):
    content = b"a,b,label\n1,2,0\n3,oops,1\n5,6,0\n"
    response = upload(client, "measurements.csv", content, target="label")
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "failed"
    assert body["error"] == "measurements.csv line 3, column 'b': 'oops' is not a number"
    assert stored_files(settings) == []  # the refused file is not kept, the record says why


def test_a_csv_without_a_target_lists_its_columns(client):
    response = upload(client, "flowers.csv", IRIS_LIKE_CSV)
    assert response.json()["state"] == "failed"
    assert "'sepal', 'petal', 'species'" in response.json()["error"]
    response = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="colour")
    assert "no column named 'colour'" in response.json()["error"]


def test_an_explicit_format_wins_over_the_file_name(client):
    response = upload(client, "measurements.txt", IRIS_LIKE_CSV, target="species", format="csv")
    assert response.status_code == 201, response.json()
    assert response.json()["file_name"].endswith(".csv")
    assert len(loads_as_the_worker_does(Dataset.objects.get())) == 4


def test_a_gzipped_tsv_upload_twice(client):
    content = gzip.compress(IRIS_LIKE_CSV.replace(b",", b"\t"))
    for _ in range(2):  # the second is stored under another name, which must still say .tsv.gz
        response = upload(client, "flowers.tsv.gz", content, target="species")
        assert response.status_code == 201, response.json()
    first, second = Dataset.objects.order_by("pk")
    assert first.file.name != second.file.name
    assert len(loads_as_the_worker_does(first)) == len(loads_as_the_worker_does(second)) == 4


def test_an_oversized_upload_is_a_413_and_nothing_is_stored(client, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    response = upload(client, "big.csv", b"a,label\n" + b"1,0\n" * 400, target="label")
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "too_large" and "big.csv is 1.6 KB, over the upload limit of 1000 bytes" in error["message"]
    assert not Dataset.objects.exists() and stored_files(settings) == []


def test_an_upload_far_over_the_limit_is_refused_before_it_is_parsed(client, settings):
    settings.MAX_UPLOAD_BYTES = 10
    response = upload(client, "huge.csv", b"a,label\n" + b"1,0\n" * 300_000, target="label")
    assert response.status_code == 413
    assert "over the upload limit" in error_of(response)["message"]


def test_an_npz_upload(client):
    buffer = io.BytesIO()
    numpy.savez(buffer, features=numpy.random.default_rng(0).normal(size=(30, 3)), y=numpy.arange(30) % 3)
    response = upload(client, "points.npz", buffer.getvalue(), x_key="features")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["schema"]["arrays"]["x"]["shape"] == [3] and body["schema"]["num_classes"] == 3
    assert loads_as_the_worker_does(Dataset.objects.get()).arrays["x"].shape == (30, 3)


def test_a_damaged_npz_fails_naming_the_file(client):
    response = upload(client, "points.npz", b"PK\x03\x04 not really a zip")
    assert response.json()["state"] == "failed"
    assert "points.npz" in response.json()["error"]


def idx_bytes(array: numpy.ndarray, type_code: int) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_idx_images_with_their_labels_become_one_npz(client):
    images = numpy.random.default_rng(0).integers(0, 255, size=(12, 4, 4)).astype(numpy.uint8)
    labels = (numpy.arange(12) % 12).astype(numpy.uint8)  # 12 classes: "10" must not sort before "2"
    response = client.post("/api/datasets/upload", {
        "file": SimpleUploadedFile("train-images-idx3-ubyte", idx_bytes(images, 0x08)),
        "labels": SimpleUploadedFile("train-labels-idx1-ubyte", idx_bytes(labels, 0x08)),
    }, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["file_format"] == "npz" and body["schema"]["arrays"]["x"]["shape"] == [1, 4, 4]
    assert body["schema"]["num_classes"] == 12
    loaded = loads_as_the_worker_does(Dataset.objects.get())
    assert numpy.array_equal(loaded.arrays["y"], labels) and loaded.label_names[:3] == ["0", "1", "2"]


def test_idx_images_alone_are_stored_as_they_are(client):
    images = numpy.zeros((5, 3, 3), dtype=numpy.uint8)
    response = upload(client, "t10k-images-idx3-ubyte", idx_bytes(images, 0x08), flatten="true")
    assert response.status_code == 201, response.json()
    assert response.json()["schema"]["arrays"]["x"]["shape"] == [9]


def image_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("shapes/circle/a.png", b"not decoded in this test")
    return buffer.getvalue()


def test_a_zip_of_images_in_class_folders_becomes_an_npz(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, (label, shade) in enumerate([("dark", 10), ("dark", 20), ("light", 240)]):
            png = io.BytesIO()
            image_module.new("L", (5, 4), color=shade).save(png, format="PNG")
            archive.writestr(f"shapes/{label}/{index}.png", png.getvalue())
    response = upload(client, "shapes.zip", buffer.getvalue())
    assert response.status_code == 201, response.json()
    schema = response.json()["schema"]
    assert schema["arrays"]["x"]["shape"] == [1, 4, 5] and schema["label_names"] == ["dark", "light"]


@pytest.mark.parametrize(("name", "fields", "words"), [
    ("notes.txt", {}, "cannot tell the file's format"),
    ("flowers.csv", {"target": "species", "x_key": "x"}, "option 'x_key' does not apply to csv files"),
    ("flowers.csv", {"target": "species", "format": "parquet"}, "format:"),
    ("flowers.csv", {"target": "species", "delimiter": ";;"}, "one character"),
    ("flowers.csv", {"target": "species", "labels": SimpleUploadedFile("l", b"1")}, "only read for IDX"),
])
def test_bad_upload_fields_are_a_400(client, name, fields, words):
    response = upload(client, name, IRIS_LIKE_CSV, **fields)
    assert response.status_code == 400
    assert words in error_of(response)["message"]


def test_an_upload_without_a_file_is_a_400(client):
    response = client.post("/api/datasets/upload", {"target": "y"}, format="multipart")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("file:")


def test_another_users_dataset_is_not_found(other_client, digits):
    assert other_client.get(f"/api/datasets/{digits.pk}").status_code == 404
    assert other_client.patch(f"/api/datasets/{digits.pk}", {"name": "mine"}, format="json").status_code == 404
    assert other_client.delete(f"/api/datasets/{digits.pk}").status_code == 404
    assert other_client.get("/api/datasets").json()["count"] == 0


def test_rename_and_delete(client, settings, django_capture_on_commit_callbacks):
    dataset_id = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="species").json()["id"]
    assert client.patch(f"/api/datasets/{dataset_id}", {"name": "Flowers"}, format="json").json()["name"] == "Flowers"
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/datasets/{dataset_id}").status_code == 204
    assert not Dataset.objects.exists() and stored_files(settings) == []


def test_a_dataset_used_by_a_run_cannot_be_deleted(client, project, graph_version, digits):
    Run.objects.create(project=project, graph_version=graph_version, dataset=digits, state=Run.State.SUCCEEDED)
    response = client.delete(f"/api/datasets/{digits.pk}")
    assert response.status_code == 409
    assert "is used by run(s)" in error_of(response)["message"]


def test_datasets_need_a_login(anonymous_client):
    assert anonymous_client.get("/api/datasets").status_code == 401
    assert upload(anonymous_client, "flowers.csv", IRIS_LIKE_CSV, target="species").status_code == 401


def test_a_builtin_larger_than_the_upload_limit_is_refused_before_it_is_generated(client):
    response = client.post("/api/datasets", {"builtin": "moons", "options": {"n_samples": 10**10}}, format="json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "too_large" and "n_samples=10000000000 would hold about" in error["message"]


def test_adding_a_builtin_twice_returns_the_first(client):
    first = client.post("/api/datasets", {"builtin": "digits"}, format="json")
    again = client.post("/api/datasets", {"builtin": "digits", "name": "digits again"}, format="json")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and Dataset.objects.count() == 1
    other = client.post("/api/datasets", {"builtin": "digits", "options": {"seed": 1}}, format="json")
    assert other.status_code == 201  # other options are other data


def test_a_dataset_served_by_an_endpoint_cannot_be_deleted_and_the_refusal_names_it(client, user, project,
                                                                                     graph_version, digits):
    from webapp.endpoints.models import Endpoint, ModelVersion  # noqa: PLC0415

    run = Run.objects.create(project=project, graph_version=graph_version, dataset=digits, state=Run.State.SUCCEEDED)
    endpoint = Endpoint.objects.create(owner=user, name="digit-reader")
    ModelVersion.objects.create(endpoint=endpoint, number=1, run=run, path="unused")
    response = client.delete(f"/api/datasets/{digits.pk}")
    assert response.status_code == 409
    error = error_of(response)
    assert "endpoint(s) digit-reader serve models trained on it" in error["message"]
    assert f"used by run(s) {run.pk}" in error["message"]
    assert error["details"] == {"runs": [run.pk], "endpoints": ["digit-reader"]}


def test_storage_is_counted_per_dataset_and_per_user_and_limited(client, settings):
    body = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="species").json()
    assert body["size_bytes"] > len(IRIS_LIKE_CSV)  # the file and its converted store
    listing = client.get("/api/datasets").json()
    assert listing["storage_bytes"] == body["size_bytes"]
    settings.DATASET_MAX_STORAGE_PER_USER_BYTES = body["size_bytes"] + 10
    response = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="species")
    assert response.status_code == 413
    assert "NETFORGE_DATASET_MAX_STORAGE_PER_USER_MB" in error_of(response)["message"]


def test_listings_summarize_wide_schemas_and_samples_are_paged(client):
    columns = [f"c{index}" for index in range(300)]
    content = (",".join([*columns, "label"]) + "\n" + "\n".join(
        ",".join([*(str(row + index) for index in range(300)), str(row % 2)]) for row in range(70)) + "\n").encode()
    body = upload(client, "wide.csv", content, target="label").json()
    assert body["state"] == "ready", body
    listed = client.get("/api/datasets").json()["results"][0]
    assert len(listed["schema"]["feature_names"]) == 100 and listed["schema"]["feature_count"] == 300
    assert all(len(row) == 100 for row in listed["preview"]["arrays"]["x"])
    samples = client.get(f"/api/datasets/{body['id']}/samples?offset=60&limit=64").json()
    assert [sample["index"] for sample in samples["results"]] == list(range(60, 70))
    assert samples["feature_count"] == 300 and len(samples["results"][0]["features"]["x"]) == 100
    assert client.get(f"/api/datasets/{body['id']}/samples?limit=65").status_code == 400


def test_a_builtin_can_be_viewed_as_images_and_switched_back(client):
    body = client.post("/api/datasets", {"builtin": "digits", "view": {"kind": "image", "shape": [1, 8, 8]}},
                       format="json").json()
    assert body["view"] == {"kind": "image", "shape": [1, 8, 8], "layout": "chw"}
    assert body["schema"]["arrays"]["x"]["shape"] == [1, 8, 8] and body["image_shape"] == [1, 8, 8]
    dataset = Dataset.objects.get(pk=body["id"])
    from webapp.datasets.selectors import dataset_array_stand_ins, load_engine_dataset  # noqa: PLC0415

    assert dataset_array_stand_ins(dataset)["x"].shape == (0, 1, 8, 8)
    assert load_engine_dataset(dataset).arrays["x"].shape == (1797, 1, 8, 8)
    flat = client.patch(f"/api/datasets/{body['id']}", {"view": {"kind": "flat"}}, format="json").json()
    assert flat["schema"]["arrays"]["x"]["shape"] == [64]
    stored = client.patch(f"/api/datasets/{body['id']}", {"view": {}}, format="json").json()
    assert stored["view"] == {} and stored["schema"]["arrays"]["x"]["shape"] == [64]


@pytest.mark.parametrize(("view", "words"), [
    ({"kind": "image", "shape": [1, 8, 9]}, "view.shape: [1, 8, 9] holds 72 values per sample, but the dataset's "
                                            "samples have shape [64] (64 values)"),
    ({"kind": "image", "shape": [2, 4, 8]}, "view.shape: an image has 1, 3 or 4 channels"),
    ({"kind": "picture"}, "view.kind: expected one of flat, image, sequence"),
    ({"kind": "sequence", "shape": [8]}, "view.shape: a sequence view needs [steps, features]"),
    ({"kind": "image", "shape": [1, 8, 8], "layout": "whc"}, "view.layout: expected chw"),
])
def test_a_view_that_does_not_fit_is_a_400_naming_the_field(client, digits, view, words):
    response = client.patch(f"/api/datasets/{digits.pk}", {"view": view}, format="json")
    assert response.status_code == 400
    assert words in error_of(response)["message"]
    digits.refresh_from_db()
    assert digits.view == {}


def test_an_upload_declares_its_view_checked_once_read(client):
    rows = b"a,b,c,d,label\n" + b"1,2,3,4,0\n5,6,7,8,1\n" * 3
    body = upload(client, "steps.csv", rows, target="label", view='{"kind": "sequence", "shape": [2, 2]}').json()
    assert body["state"] == "ready" and body["schema"]["arrays"]["x"]["shape"] == [2, 2]
    from webapp.datasets.selectors import load_engine_dataset  # noqa: PLC0415

    loaded = load_engine_dataset(Dataset.objects.get(pk=body["id"]))
    assert loaded.arrays["x"].shape == (6, 2, 2) and loaded.arrays["x"][1].tolist() == [[5, 6], [7, 8]]
    wrong = upload(client, "steps.csv", rows, target="label", view='{"kind": "sequence", "shape": [3, 2]}').json()
    assert wrong["state"] == "failed" and "view.shape: [3, 2] holds 6 values" in wrong["error"]
    assert upload(client, "steps.csv", rows, target="label", view="{not json").status_code == 400


def test_channels_last_images_are_viewed_channels_first(client):
    pixels = numpy.arange(2 * 4 * 4 * 3, dtype=numpy.float32).reshape(2, 4, 4, 3)  # N, H, W, C
    buffer = io.BytesIO()
    numpy.savez(buffer, x=pixels.reshape(2, -1), y=numpy.array([0, 1]))
    body = upload(client, "rgb.npz", buffer.getvalue(),
                  view='{"kind": "image", "shape": [3, 4, 4], "layout": "hwc"}').json()
    assert body["state"] == "ready" and body["image_shape"] == [3, 4, 4]
    from webapp.datasets.selectors import load_engine_dataset  # noqa: PLC0415

    loaded = load_engine_dataset(Dataset.objects.get(pk=body["id"]))
    assert numpy.array_equal(loaded.arrays["x"], pixels.transpose(0, 3, 1, 2))


def test_a_template_project_gets_its_recommended_dataset_options_and_trains_on_them(client, user, enqueued,
                                                                                     django_capture_on_commit_callbacks):
    from engine import zoo  # noqa: PLC0415
    from webapp.projects.converter import spec_to_editor_document  # noqa: PLC0415
    from webapp.projects.services import graph_version_create, project_create  # noqa: PLC0415

    project = project_create(owner=user, name="Small CNN")
    version = graph_version_create(project=project, editor_document=spec_to_editor_document(zoo.load("small_cnn")),
                                   created_by=user)
    # what the train panel sends when the user has no digits yet: the built-in and the project
    body = client.post("/api/datasets", {"builtin": "digits", "project": project.pk}, format="json").json()
    assert body["options"] == {"image": True} and body["schema"]["arrays"]["x"]["shape"] == [1, 8, 8]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/projects/{project.pk}/runs", {
            "graph_version": version.pk, "dataset": body["id"], "hyperparameters": {"epochs": 1}}, format="json")
    assert response.status_code == 201, response.json()


def test_a_run_on_a_dataset_that_is_not_ready_is_refused_with_the_reason(client, project, graph_version, settings):
    settings.DATASET_MAX_ROWS = 2
    failed = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="species").json()
    response = client.post(f"/api/projects/{project.pk}/runs",
                           {"graph_version": graph_version.pk, "dataset": failed["id"]}, format="json")
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert "dataset 'flowers' is failed: flowers.csv: 4 rows, over the limit max_rows=2" in message


def test_an_upload_whose_worker_stopped_fails_instead_of_processing_forever(client, settings):
    settings.DATASET_CONVERSION_INLINE = False  # nothing converts it (its message goes nowhere)
    with mock.patch("webapp.datasets.services._enqueue_conversion"):
        body = upload(client, "flowers.csv", IRIS_LIKE_CSV, target="species").json()
    assert body["state"] == "processing"
    assert client.get(f"/api/datasets/{body['id']}").json()["state"] == "processing"
    Dataset.objects.filter(pk=body["id"]).update(
        created_at=timezone.now() - timedelta(seconds=2 * settings.DATASET_CONVERSION_TIMEOUT_SECONDS + 1))
    stale = client.get(f"/api/datasets/{body['id']}").json()
    assert stale["state"] == "failed" and "upload the file again" in stale["error"]


@pytest.mark.parametrize("value", ["99999999999999999999", "9223372036854775808", "²", "-1", "1.5"])
def test_a_project_filter_that_is_not_an_id_is_refused_naming_it(client, value):
    # 20 digits overflow the database's integers; '²' passes str.isdigit but not int(): both were 500s
    response = client.get("/api/datasets", {"project": value})
    assert response.status_code == 400
    assert error_of(response)["details"] == {"project": ["not an id"]}
    assert client.get("/api/datasets", {"project": "9223372036854775807"}).status_code == 200
