"""The pages around the editor, in real Chromium against a server started like ``make run``: a CSV
uploaded on the Datasets page (its detected schema and preview, and a bad file's error naming the
line and column); a template trained from the train panel with its other fields set; a long run
cancelled, resumed and cancelled again from its run page; the run list filtered and sorted; a run
published as an endpoint, called over REST with a key created (and shown once) and revoked on the
endpoint page, whose examples and metrics follow; and the graph exported and imported as JSON."""

from __future__ import annotations

import json
import random
import re
import time
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from engine import data
from tests.browser.editor_actions import choose, new_project, node_ids, sign_up

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]

SPECIES = ("setosa", "versicolor", "virginica")


def write_flowers(path, rows: int, bad_line: int | None = None) -> None:
    """A small classification CSV: the label column first (so it must be picked: the form guesses
    the last one), then four numeric columns. ``bad_line``: that line's petal_length is text."""
    generator = random.Random(7)
    lines = ["variety,sepal_length,sepal_width,petal_length,petal_width"]
    for index in range(rows):
        kind = index % len(SPECIES)
        values = [generator.gauss(5 + kind, 0.4), generator.gauss(3 - kind * 0.2, 0.3),
                  generator.gauss(1.5 + 2 * kind, 0.3), generator.gauss(0.2 + 0.8 * kind, 0.1)]
        cells = [f"{value:.2f}" for value in values]
        if bad_line is not None and len(lines) + 1 == bad_line:
            cells[2] = "n/a"
        lines.append(",".join([SPECIES[kind], *cells]))
    path.write_text("\n".join(lines) + "\n")


def test_datasets_upload_shows_schema_preview_and_errors(page, tmp_path):
    steps = page.steps
    sign_up(page, f"hedy-{uuid.uuid4().hex[:6]}")
    page.get_by_role("link", name="Datasets", exact=True).click()
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    expect(page.get_by_text("None yet: upload a file")).to_be_visible()

    # a good CSV: the label column picked from the header's columns, then the detected schema
    flowers = tmp_path / "flowers.csv"
    write_flowers(flowers, rows=150)
    page.get_by_test_id("dataset-file").set_input_files(str(flowers))
    label_column = page.get_by_label("Label column")
    expect(label_column).to_have_value("petal_width")  # the form's guess: the last column
    label_column.select_option("variety")
    steps.shot("upload-form")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    expect(page.get_by_role("heading", name="flowers", exact=True)).to_be_visible()
    schema = page.get_by_test_id("dataset-schema")
    expect(schema).to_contain_text("classification")
    expect(page.get_by_test_id("dataset-rows")).to_have_text("150")
    expect(page.get_by_test_id("dataset-classes")).to_have_text("3")
    arrays = page.get_by_test_id("dataset-arrays")
    expect(arrays.get_by_role("row")).to_have_count(3)  # header, features, labels
    expect(arrays.get_by_role("row", name=re.compile("features"))).to_have_text(re.compile(r"^x\s*\[4\]\s*float32"))
    expect(arrays.get_by_role("row", name=re.compile("labels"))).to_have_text(re.compile(r"^y\s*\[\]\s*int64"))
    expect(page.get_by_text("flowers.csv: 150 rows, 4 features, target 'variety'")).to_be_visible()
    for species in SPECIES:
        expect(page.locator(".class-list")).to_contain_text(species)
    # the preview: a page of rows with the header's column names and the label names
    table = page.get_by_test_id("dataset-table")
    expect(table.locator("tbody tr")).to_have_count(25)
    for column in ("sepal_length", "sepal_width", "petal_length", "petal_width"):
        expect(table.get_by_role("columnheader", name=column)).to_be_visible()
    expect(table.locator("tbody tr").first).to_contain_text("setosa")
    expect(page.get_by_test_id("dataset-preview")).to_contain_text("1–25 of 150")
    steps.shot("schema-and-preview")
    page.get_by_test_id("dataset-preview").get_by_role("button", name="Next").click()
    expect(page.get_by_test_id("dataset-preview")).to_contain_text("26–50 of 150")
    expect(table.locator("tbody tr").first.locator("td").first).to_have_text("25")

    # listed on the Datasets page
    page.get_by_role("link", name="Datasets", exact=True).first.click()
    row = page.locator('[data-testid^="dataset-row-"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("flowers")
    expect(row).to_contain_text("150")

    # text in a numeric column: refused, naming the file, line and column
    broken = tmp_path / "broken.csv"
    write_flowers(broken, rows=20, bad_line=7)
    page.get_by_test_id("dataset-file").set_input_files(str(broken))
    page.get_by_label("Label column").select_option("variety")
    page.get_by_role("button", name="Upload", exact=True).click()
    error = page.get_by_test_id("upload-error")
    expect(error).to_contain_text("line 7, column 'petal_length'")
    expect(error).to_contain_text("'n/a' is not a number")
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(row).to_have_count(1)  # nothing stored
    steps.shot("upload-error")
    unexpected = [error for error in steps.console_errors if "status of 401" not in error and "status of 400" not in error]
    assert not unexpected, unexpected
