"""Dataset samples for the browser (images as PNG data URLs) and the stored file's download."""

from __future__ import annotations

import base64
import io
import zipfile

import numpy
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from tests.webapp.helpers import error_of
from tests.webapp.test_datasets_api import IRIS_LIKE_CSV, idx_bytes, upload
from webapp.datasets.images import image_layout

pytestmark = pytest.mark.django_db


def decoded(data_url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))


def test_digits_samples_are_8x8_images_with_their_labels(client, digits):
    assert client.get(f"/api/datasets/{digits.pk}").json()["image_shape"] == [1, 8, 8]
    response = client.get(f"/api/datasets/{digits.pk}/samples?offset=10&limit=3")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 1797 and body["offset"] == 10 and body["image_shape"] == [1, 8, 8]
    assert [sample["index"] for sample in body["results"]] == [10, 11, 12]
    first = body["results"][0]
    assert first["label"] == 0 and first["label_name"] == "0", "digits 10, 11, 12 are 0, 1, 2"
    assert first["features"] == {}, "the pixels are in the image, not repeated"
    image = decoded(first["image"])
    assert image.size == (8, 8) and image.mode == "L"
    # The pixel values 0..16 of the whole dataset span 0..255.
    pixels = numpy.asarray(image)
    assert pixels.min() == 0 and pixels.max() > 128


def test_tabular_samples_have_their_features_and_no_image(client, user):
    iris = client.post("/api/datasets", {"builtin": "iris"}, format="json").json()
    assert iris["image_shape"] is None
    body = client.get(f"/api/datasets/{iris['id']}/samples?limit=2").json()
    assert body["image_shape"] is None and body["feature_names"][0].startswith("sepal")
    sample = body["results"][0]
    assert "image" not in sample and len(sample["features"]["x"]) == 4
    assert sample["label_name"] == "setosa"


def test_a_zip_of_images_is_drawn_as_it_was_uploaded(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, (label, colour) in enumerate([("red", (250, 0, 0)), ("blue", (0, 0, 250))]):
            png = io.BytesIO()
            Image.new("RGB", (6, 4), color=colour).save(png, format="PNG")
            archive.writestr(f"{label}/{index}.png", png.getvalue())
    dataset = upload(client, "colours.zip", buffer.getvalue()).json()
    assert dataset["image_shape"] == [3, 4, 6]
    body = client.get(f"/api/datasets/{dataset['id']}/samples").json()
    by_name = {sample["label_name"]: decoded(sample["image"]) for sample in body["results"]}
    assert set(by_name) == {"red", "blue"} and by_name["red"].size == (6, 4)
    assert by_name["red"].convert("RGB").getpixel((0, 0))[0] > 200
    assert by_name["blue"].convert("RGB").getpixel((0, 0))[2] > 200


@pytest.mark.parametrize("with_labels", [False, True])
def test_flattened_idx_images_keep_their_size(client, with_labels):
    images = numpy.random.default_rng(0).integers(0, 255, size=(6, 3, 5)).astype(numpy.uint8)
    fields = {"file": SimpleUploadedFile("train-images-idx3-ubyte", idx_bytes(images, 0x08)), "flatten": "true"}
    if with_labels:
        fields["labels"] = SimpleUploadedFile("train-labels-idx1-ubyte", idx_bytes(numpy.arange(6, dtype=numpy.uint8)
                                                                                   % 2, 0x08))
    dataset = client.post("/api/datasets/upload", fields, format="multipart").json()
    assert dataset["schema"]["arrays"]["x"]["shape"] == [15] and dataset["image_shape"] == [1, 3, 5]
    sample = client.get(f"/api/datasets/{dataset['id']}/samples?limit=1").json()["results"][0]
    assert decoded(sample["image"]).size == (5, 3)


@pytest.mark.parametrize(("shape", "expected"), [
    ([28, 28], [1, 28, 28]), ([3, 32, 32], [3, 32, 32]), ([32, 32, 3], [3, 32, 32]), ([16, 5, 5], [1, 5, 5]),
    ([64], None), ([4], None), ([10, 1], None),
])
def test_which_sample_shapes_are_images(shape, expected):
    layout = image_layout(shape)
    assert (layout.shape if layout else None) == expected


def test_an_offset_past_the_end_gives_no_samples(client, digits):
    body = client.get(f"/api/datasets/{digits.pk}/samples?offset=5000").json()
    assert body["results"] == [] and body["count"] == 1797


@pytest.mark.parametrize("query", ["limit=65", "limit=0", "offset=-1", "limit=many"])
def test_bad_sample_queries_are_a_400(client, digits, query):
    response = client.get(f"/api/datasets/{digits.pk}/samples?{query}")
    assert response.status_code == 400
    assert error_of(response)["message"].startswith(query.split("=")[0])


def test_another_users_samples_and_file_are_not_found(other_client, digits):
    assert other_client.get(f"/api/datasets/{digits.pk}/samples").status_code == 404
    assert other_client.get(f"/api/datasets/{digits.pk}/file").status_code == 404


def test_an_uploaded_file_downloads_under_its_original_name(client, digits):
    dataset = upload(client, "My Flowers.csv", IRIS_LIKE_CSV, target="species").json()
    assert dataset["original_name"] == "My_Flowers.csv"
    response = client.get(f"/api/datasets/{dataset['id']}/file")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == IRIS_LIKE_CSV
    assert 'filename="My_Flowers.csv"' in response["Content-Disposition"]
    missing = client.get(f"/api/datasets/{digits.pk}/file")
    assert missing.status_code == 404 and "built-in" in error_of(missing)["message"]
