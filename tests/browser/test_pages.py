"""The pages around the editor, in real Chromium against a server started like ``make run``: a CSV
uploaded on the Datasets page (its detected schema and preview once the worker has converted it,
and a bad file failed with the error naming the line and column); a template trained from the
train panel with its other fields set; a long run
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
    # The page's first list of datasets, from a server that the other test worker keeps busy: it took
    # over 5 s in a clean-clone run on the 2-core machine (under 1 s alone), so it gets 15 s.
    expect(page.get_by_text("None yet: upload a file")).to_be_visible(timeout=15_000)

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
    # A worker converts the upload (a Celery task and a child interpreter): seconds on a busy machine.
    expect(schema).to_contain_text("classification", timeout=30_000)
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

    # text in a numeric column: the worker refuses it, naming the file, line and column
    broken = tmp_path / "broken.csv"
    write_flowers(broken, rows=20, bad_line=7)
    page.get_by_test_id("dataset-file").set_input_files(str(broken))
    page.get_by_label("Label column").select_option("variety")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/datasets/\d+$"))
    error = page.get_by_test_id("dataset-failed")
    expect(error).to_contain_text("line 7, column 'petal_length'", timeout=30_000)
    expect(error).to_contain_text("'n/a' is not a number")
    steps.shot("upload-error")
    page.get_by_role("link", name="Datasets", exact=True).first.click()
    expect(row).to_have_count(2)
    expect(page.locator('[data-testid^="dataset-state-"]').filter(has_text="failed")).to_have_count(1)
    # Expected: the login page's 401 from /api/auth/me/.
    unexpected = [error for error in steps.console_errors if not re.search(r"status of 40[01]", error)]
    assert not unexpected, unexpected


def open_train_panel(page, name: str, *, epochs: int, batch_size: int) -> None:
    """From the editor of a saved graph: the train panel on digits with these fields filled."""
    page.get_by_role("button", name="Train").click()
    choose(page.get_by_test_id("train-dataset"), "digits")
    page.get_by_test_id("train-epochs").fill(str(epochs))
    page.get_by_test_id("train-batch-size").fill(str(batch_size))
    page.get_by_test_id("train-name").fill(name)


def submit_training(page) -> int:
    """Start training from the open train panel; the run's id, with its page open."""
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/runs/\d+"))
    return int(re.search(r"/runs/(\d+)", page.url).group(1))


def fact(page, name: str):
    """A value of the run page's Configuration table."""
    return page.get_by_role("row", name=re.compile(rf"^{re.escape(name)}\b")).locator("td")


def run_rows(page) -> list[int]:
    return page.locator('[data-testid^="run-row-"]').evaluate_all(
        "rows => rows.map(row => Number(row.dataset.testid.replace('run-row-', '')))")


def test_train_cancel_resume_runs_publish_call_and_json_round_trip(page, netforge, tmp_path):
    steps = page.steps
    sign_up(page, f"alan-{uuid.uuid4().hex[:6]}")
    project_id = new_project(page, "Digits runs")
    page.get_by_test_id("palette-search").fill("softmax")
    page.get_by_role("button", name="Load template Softmax regression").click()
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
    template_nodes = sorted(node_ids(page))
    template_edges = page.locator(".react-flow__edge").count()
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_test_id("save-message").fill("softmax regression")
    page.get_by_role("button", name="Save version").click()
    expect(page.get_by_text("unsaved changes")).to_have_count(0)

    # the graph as JSON, downloaded
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name == "Digits_runs.netforge.json"
    document = json.loads(exported.read_text())
    assert document["format"] == "netforge.editor/1", document.get("format")
    assert sorted(node["id"] for node in document["nodes"]) == template_nodes, document["nodes"]
    assert len(document["edges"]) == template_edges, document["edges"]
    steps.shot("template-saved")

    # a long run, cancelled from its page, resumed (a second attempt), and cancelled again
    open_train_panel(page, "long-haul", epochs=400, batch_size=8)
    long_run = submit_training(page)
    state = page.get_by_test_id("run-state")
    expect(state).to_have_text("running", timeout=30_000)
    expect(fact(page, "Attempt")).to_have_text("1")
    chart = page.get_by_test_id("chart-loss")
    expect(chart).not_to_have_attribute("data-points", re.compile(r"^0?$"), timeout=30_000)
    page.get_by_role("button", name="Cancel").click()
    expect(state).to_have_text("cancelled", timeout=30_000)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    points_when_cancelled = int(chart.get_attribute("data-points"))
    steps.shot("cancelled")
    page.get_by_role("button", name="Resume").click()
    expect(state).to_have_text("running", timeout=30_000)
    expect(fact(page, "Attempt")).to_have_text("2")
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    deadline = time.monotonic() + 30
    while int(chart.get_attribute("data-points") or 0) <= points_when_cancelled and time.monotonic() < deadline:
        time.sleep(0.3)
    assert int(chart.get_attribute("data-points") or 0) > points_when_cancelled, "the resumed run drew no new points"
    steps.shot("resumed")
    page.get_by_role("button", name="Cancel").click()
    expect(state).to_have_text("cancelled", timeout=30_000)

    # a quick run with the train panel's other fields: split, optimizer and its option, schedule,
    # early stopping; they land in the run's configuration
    page.goto(f"/projects/{project_id}")
    expect(page.get_by_test_id("palette-item-dense")).to_be_visible()
    open_train_panel(page, "quick-momentum", epochs=6, batch_size=32)
    panel = page.get_by_role("form", name="Training settings")
    panel.get_by_label("Validation split").fill("0.25")
    page.get_by_test_id("train-optimizer").select_option("momentum")
    expect(page.get_by_test_id("train-learning-rate")).to_have_value("0.01")  # the optimizer's default
    page.get_by_test_id("train-learning-rate").fill("0.05")
    panel.get_by_label("Momentum", exact=True).fill("0.8")
    panel.get_by_label("Schedule", exact=True).select_option("step")
    panel.get_by_label("Factor γ").fill("0.5")
    panel.get_by_label("Stop when the monitored metric stops improving").check()
    panel.get_by_label("Monitor", exact=True).select_option("val_accuracy")
    panel.get_by_label("Patience (epochs)").fill("2")
    steps.shot("train-panel-fields")
    quick_run = submit_training(page)
    expect(state).to_have_text("succeeded", timeout=90_000)
    expect(fact(page, "validation_fraction")).to_have_text("0.25")
    expect(fact(page, "optimizer.name")).to_have_text("momentum")
    expect(fact(page, "optimizer.lr")).to_have_text("0.05")
    expect(fact(page, "optimizer.momentum")).to_have_text("0.8")
    expect(fact(page, "optimizer.schedule.name")).to_have_text("step")
    expect(fact(page, "optimizer.schedule.gamma")).to_have_text("0.5")
    expect(fact(page, "early_stopping.monitor")).to_have_text("val_accuracy")
    expect(fact(page, "early_stopping.mode")).to_have_text("max")
    expect(fact(page, "early_stopping.patience")).to_have_text("2")
    accuracy = float(page.get_by_test_id("final-metric-val_accuracy").inner_text())
    assert accuracy >= 0.85, accuracy
    # a quarter of 1,797 rows held out
    expect(page.get_by_test_id("evaluation")).to_contain_text(re.compile(r"rows\s*449(?!\d)"))
    steps.shot("quick-run-succeeded")
    run_page = page.url

    # the project's runs: filtered by name, sorted by a column
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page.get_by_test_id(f"run-row-{long_run}")).to_contain_text("cancelled")
    expect(page.get_by_test_id(f"run-row-{quick_run}")).to_contain_text("succeeded")
    assert run_rows(page) == [quick_run, long_run]  # newest first
    epochs = page.get_by_role("columnheader", name=re.compile(r"^Epochs"))
    epochs.click()  # numbers: high to low first
    expect(epochs).to_have_attribute("aria-sort", "descending")
    assert run_rows(page) == [long_run, quick_run]
    epochs.click()
    expect(epochs).to_have_attribute("aria-sort", "ascending")
    assert run_rows(page) == [quick_run, long_run]
    name = page.get_by_role("columnheader", name=re.compile(r"^Name"))
    name.click()  # text: A to Z first
    expect(name).to_have_attribute("aria-sort", "ascending")
    assert run_rows(page) == [long_run, quick_run]  # long-haul < quick-momentum
    search = page.get_by_role("searchbox")
    search.fill("quick")
    expect(page.locator('[data-testid^="run-row-"]')).to_have_count(1)
    assert run_rows(page) == [quick_run]
    expect(page).to_have_url(re.compile(r"[?&]q=quick"))
    steps.shot("runs-filtered")
    search.fill("no such run")
    expect(page.get_by_text("No run matches these filters.")).to_be_visible()
    search.fill("")
    expect(page.locator('[data-testid^="run-row-"]')).to_have_count(2)

    # published as an endpoint from the succeeded run's page
    endpoint = f"digits-{uuid.uuid4().hex[:6]}"
    page.goto(run_page)
    page.get_by_role("button", name="Publish").click()
    page.get_by_label("Endpoint name").fill(endpoint)
    page.get_by_role("button", name="Publish").click()
    page.get_by_role("link", name=f"{endpoint} v1").click()
    page.wait_for_url(re.compile(rf"/endpoints/{endpoint}$"))
    expect(page.get_by_role("heading", name=endpoint)).to_be_visible()
    expect(page.get_by_text("Default: v1")).to_be_visible()

    # the examples name the gRPC port this server really listens on
    detail = page.request.get(f"/api/v1/endpoints/{endpoint}").json()
    grpc_port = detail["urls"]["grpc_port"]
    listening = re.search(r"gRPC:\s+\S+:(\d+)", netforge.log_text()).group(1)
    assert grpc_port == listening and grpc_port not in ("0", "50051"), (grpc_port, listening)
    expect(page.get_by_test_id("example-grpcurl")).to_contain_text(
        f":{grpc_port} netforge.serving.v1.PredictionService/Predict")
    expect(page.get_by_test_id("example-curl")).to_contain_text(f"{netforge.url}/api/v1/endpoints/{endpoint}/predict")
    expect(page.get_by_test_id("example-Python")).to_contain_text(f"{netforge.url}/api/v1/endpoints/{endpoint}/predict")

    # a key, shown once
    page.get_by_placeholder("key name (optional)").fill("test client")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-api-key").inner_text()
    assert key and len(key) > 20, key
    keys = page.get_by_role("row", name=re.compile("test client"))
    expect(keys).to_contain_text("active")
    expect(keys).to_contain_text(f"{key[:8]}")
    steps.shot("key-created")
    page.reload()
    expect(page.get_by_role("row", name=re.compile(r"^v1 default"))).to_contain_text("ready")
    expect(page.get_by_role("row", name=re.compile("test client"))).to_contain_text("active")
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    assert key not in page.content()

    # the REST predict route, called with the key: a class per digit
    digits = data.load_builtin("digits")
    rows, labels = digits.arrays["x"][:10], digits.arrays["y"][:10]
    predict = f"{netforge.url}/api/v1/endpoints/{endpoint}/predict"
    body = {"instances": [[float(value) for value in row] for row in rows]}
    answer = httpx.post(predict, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert len(predictions) == 10 and all(0 <= prediction["class"] <= 9 for prediction in predictions), predictions
    correct = sum(prediction["class"] == int(label) for prediction, label in zip(predictions, labels))
    assert correct >= 8, (correct, predictions)

    # revoked: the same call is refused
    page.get_by_role("row", name=re.compile("test client")).get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("row", name=re.compile("test client"))).to_contain_text("revoked")
    refused = httpx.post(predict, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert refused.status_code == 401, refused.text

    # the metrics count the request (each serving process adds its counts about once a second)
    requests_line = page.get_by_test_id("sparkline-requests/min")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.reload()
        expect(requests_line).not_to_contain_text("max —")  # the metrics have loaded
        if re.search(r"max [1-9]", requests_line.inner_text()):
            break
        time.sleep(1)
    expect(requests_line).to_contain_text(re.compile(r"\(max [1-9]\d*\)"))
    expect(page.get_by_test_id("sparkline-errors/min")).to_contain_text("(max 0)")
    # one minute with traffic: its latency is a lone point, drawn as a dot
    expect(page.get_by_test_id("sparkline-mean latency").locator("circle")).to_have_count(1)
    totals = page.get_by_test_id("endpoint-metrics").get_by_role("row", name=re.compile(r"^v1 rest"))
    expect(totals).to_have_text(re.compile(r"^v1\s*rest\s*1\s*0"))  # one request, no errors
    steps.shot("endpoint-metrics")
    page.get_by_test_id("example-grpcurl").scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # the scrolled pane repaints
    steps.shot("endpoint-examples")

    # the exported graph imported into a new project: the same nodes and edges
    page.get_by_role("link", name="Projects", exact=True).first.click()
    new_project(page, "Imported")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Import JSON").click()
    chooser.value.set_files(str(exported))
    expect(page.locator(".react-flow__node")).to_have_count(len(template_nodes))
    assert sorted(node_ids(page)) == template_nodes
    expect(page.locator(".react-flow__edge")).to_have_count(template_edges)
    expect(page.get_by_text(f"Imported {exported.name}")).to_be_visible()
    expect(page.get_by_test_id("summary-errors")).to_have_text("0", timeout=10_000)
    expect(page.get_by_test_id("summary-parameters")).to_contain_text("650")  # 64*10+10
    steps.shot("imported")
    unexpected = [error for error in steps.console_errors if "status of 401" not in error]
    assert not unexpected, unexpected
