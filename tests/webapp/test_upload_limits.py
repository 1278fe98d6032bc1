"""Every decompression-bomb class of issue 13 is refused by a limit, named in the failed dataset,
before it is decoded. Uploads are converted in this process's own child under the same limits
(DATASET_CONVERSION_INLINE); the limits are set small so the files stay small."""

from __future__ import annotations

import gzip
import io

import numpy
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from engine.data.store import is_mapped
from tests.webapp import upload_bombs
from tests.webapp.test_datasets_api import stored_files, upload
from webapp.datasets.models import Dataset

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def failed_with(response, *words: str) -> str:
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "failed", body
    for word in words:
        assert word in body["error"], body["error"]
    return body["error"]


def test_a_zip_of_huge_pngs_is_refused_from_the_image_header(client, settings):
    settings.DATASET_MAX_PIXELS = 1000 * 1000
    content = upload_bombs.zip_of_huge_pngs(count=4, side=2000)  # 4 Mpixel each, a few KB in all
    assert len(content) < 100_000
    error = failed_with(upload(client, "bombs.zip", content), "4000000 pixels", "max_pixels=1000000",
                        "NETFORGE_DATASET_MAX_PIXELS")
    assert "bombs.zip" in error


def test_an_image_just_over_the_pixel_limit_is_refused_from_its_header(client, settings):
    settings.DATASET_MAX_PIXELS = 100 * 100
    # under twice the limit, where Pillow itself only warns: the size is checked before decoding
    failed_with(upload(client, "bombs.zip", upload_bombs.zip_of_huge_pngs(count=2, side=120)), "120x120",
                "max_pixels=10000")


def test_the_images_of_a_zip_together_are_limited_before_any_is_decoded(client, settings):
    settings.DATASET_MAX_ARRAY_MB = 1
    content = upload_bombs.zip_of_huge_pngs(count=40, side=200)  # 40 x 3 x 200 x 200 float32 = 19 MB
    failed_with(upload(client, "many.zip", content), "40 images of 200x200", "max_array_bytes")


def test_a_gzip_idx_declaring_a_huge_array_is_refused_from_its_header(client, settings):
    settings.DATASET_MAX_ARRAY_MB = 16
    # declares 65536 images of 128x128 (1 GiB as float32); holds 1 MB of zeros
    content = upload_bombs.gzip_idx_declaring((65536, 128, 128), data_bytes=MB)
    failed_with(upload(client, "train-images-idx3-ubyte.gz", content), "shape [65536, 128, 128]",
                "max_array_bytes", "NETFORGE_DATASET_MAX_ARRAY_MB")


def test_a_gzip_idx_whose_data_expands_past_its_header_is_stopped_while_streaming(client, settings):
    settings.DATASET_MAX_DECOMPRESSED_MB = 4
    content = upload_bombs.gzip_idx_declaring((10, 4, 4), data_bytes=40 * MB)  # a small header, 40 MB of data
    assert len(content) < 100_000
    failed_with(upload(client, "t10k-images-idx3-ubyte.gz", content), "max_decompressed_bytes=4194304")


def test_a_gzip_csv_expanding_far_past_the_cap_is_stopped_while_streaming(client, settings):
    settings.DATASET_MAX_DECOMPRESSED_MB = 8
    content = upload_bombs.gzip_csv_expanding_to(40 * MB)
    assert len(content) < 200_000
    failed_with(upload(client, "rows.csv.gz", content, target="label"), "rows.csv.gz", "max_decompressed_bytes")
    assert stored_files(settings) == []


def test_csv_rows_and_columns_are_limited(client, settings):
    settings.DATASET_MAX_COLUMNS = 50
    wide = ",".join(f"c{i}" for i in range(100)) + ",label\n" + ",".join(["1"] * 101) + "\n"
    failed_with(upload(client, "wide.csv", wide.encode(), target="label"), "101 columns", "max_columns=50")
    settings.DATASET_MAX_ROWS = 100
    long = b"a,label\n" + b"1,0\n" * 500
    failed_with(upload(client, "long.csv", long, target="label"), "500 rows", "max_rows=100")


def test_an_npz_with_a_deflated_huge_array_is_refused_from_the_npy_header(client, settings):
    settings.DATASET_MAX_ARRAY_MB = 16
    content = upload_bombs.npz_with_deflated_array((1 << 28,), data_bytes=4 * MB)  # declares 1 GiB of float32
    assert len(content) < 100_000
    failed_with(upload(client, "points.npz", content, y_key="none"), "'x'", "[268435456]", "max_array_bytes")


def test_a_zip_with_too_many_members_is_refused(client, settings):
    settings.DATASET_MAX_ARCHIVE_MEMBERS = 100
    content = upload_bombs.zip_with_members([f"pictures/a/{index}.png" for index in range(101)])
    failed_with(upload(client, "many.zip", content), "101 files", "max_archive_members=100")


@pytest.mark.parametrize("name", ["../outside/a.png", "/etc/a/b.png", "pictures/../../a.png"])
def test_a_zip_member_reaching_outside_the_archive_is_refused(client, name):
    content = upload_bombs.zip_with_members([name, "pictures/b/1.png"], upload_bombs.png_of(4, 4))
    failed_with(upload(client, "escape.zip", content), "unsafe path", name)


def test_a_truncated_gzip_upload_fails_cleanly(client, settings):
    content = gzip.compress(b"a,label\n" + b"1,0\n" * 50_000)[:-200]
    failed_with(upload(client, "cut.csv.gz", content, target="label"), "truncated gzip")
    assert stored_files(settings) == []


def test_a_conversion_over_the_memory_limit_fails_naming_it(client, settings):
    settings.DATASET_CONVERSION_MEMORY_BYTES = 32 * MB
    rows = numpy.random.default_rng(0).random((400_000, 20))  # 64 MB of text numbers: far more decoded
    text = io.StringIO()
    text.write(",".join(f"f{i}" for i in range(19)) + ",label\n")
    numpy.savetxt(text, rows, delimiter=",", fmt="%.6f")
    failed_with(upload(client, "big.csv", text.getvalue().encode(), target="label"),
                "NETFORGE_DATASET_CONVERSION_MEMORY_MB=32")


def test_a_file_within_the_limits_is_ready_and_reads_memory_mapped(client, settings):
    settings.DATASET_MAX_PIXELS = 1000 * 1000
    from PIL import Image  # noqa: PLC0415

    buffer = io.BytesIO()
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(6):
            png = io.BytesIO()
            Image.new("RGB", (8, 6), color=(index * 40, 0, 0)).save(png, format="PNG")
            archive.writestr(f"{'ab'[index % 2]}/{index}.png", png.getvalue())
    body = upload(client, "colours.zip", buffer.getvalue()).json()
    assert body["state"] == "ready", body
    assert body["schema"]["arrays"]["x"] == {"shape": [3, 6, 8], "dtype": "float32"}
    from webapp.datasets.selectors import load_engine_dataset  # noqa: PLC0415

    loaded = load_engine_dataset(Dataset.objects.get(pk=body["id"]))
    assert is_mapped(loaded.arrays["x"]) and loaded.arrays["x"].shape == (6, 3, 6, 8)
    assert loaded.label_names == ["a", "b"] and list(loaded.arrays["y"]) == [0, 0, 0, 1, 1, 1]
    # the .npz kept for downloads reads back to the same classes
    assert body["file_format"] == "npz" and body["file_name"] == "colours.npz"


def test_a_labels_file_travels_with_idx_images(client):
    images = numpy.arange(4 * 3 * 3, dtype=numpy.uint8).reshape(4, 3, 3)
    labels = numpy.array([3, 1, 3, 1], dtype=numpy.uint8)
    response = client.post("/api/datasets/upload", {
        "file": SimpleUploadedFile("train-images-idx3-ubyte", upload_bombs.idx_header(images.shape) + images.tobytes()),
        "labels": SimpleUploadedFile("train-labels-idx1-ubyte",
                                     upload_bombs.idx_header(labels.shape) + labels.tobytes()),
    }, format="multipart")
    body = response.json()
    assert body["state"] == "ready", body
    assert body["schema"]["label_names"] == ["1", "3"]
