"""The upload form's side of datasets: formats by file name, safe stored names, typed options.

Formats: CSV/TSV (a header row; ``target`` names the label column), NumPy ``.npz`` (``x`` and
``y`` arrays by default), IDX (MNIST's format; images, with an optional labels file), and a zip
of images in one folder per class. Nothing here reads what is inside a file: that is the
conversion's work, in a worker's child process (``webapp.datasets.conversion``).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from webapp.core.exceptions import InvalidInput

FORMATS = ("csv", "tsv", "npz", "idx", "zip")
# Loader options each format accepts from the upload form, with their types.
FORMAT_OPTIONS = {
    "csv": {"target": str, "delimiter": str, "task": str},
    "tsv": {"target": str, "task": str},
    "npz": {"x_key": str, "y_key": str, "task": str},
    "idx": {"flatten": bool},
    "zip": {},
}
STORED_SUFFIXES = {"csv": ".csv", "tsv": ".tsv", "npz": ".npz", "idx": ".idx", "zip": ".zip"}


def detect_format(file_name: str) -> str | None:
    name = file_name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".tsv"):
        return "tsv"
    if file_name.lower().endswith(".npz"):
        return "npz"
    if file_name.lower().endswith(".zip"):
        return "zip"
    if "idx" in name or name.endswith("-ubyte"):
        return "idx"
    return None


def safe_file_name(name: str) -> str:
    """The upload's base name with anything but letters, digits, ``. _ -`` replaced."""
    base = PurePosixPath(name.replace("\\", "/")).name or "upload"
    return re.sub(r"[^A-Za-z0-9._-]", "_", base)[:150]


def check_options(file_format: str, raw: dict) -> dict:
    """The loader options of the form, typed; unknown ones for the format are a 400."""
    accepted = FORMAT_OPTIONS[file_format]
    options = {}
    for key, value in raw.items():
        if value is None or value == "":
            continue
        if key not in accepted:
            raise InvalidInput(f"option '{key}' does not apply to {file_format} files; options for {file_format}: "
                               f"{', '.join(accepted) or 'none'}", details={key: ["not an option of this format"]})
        if accepted[key] is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0"):
                raise InvalidInput(f"option '{key}' must be true or false, got {value!r}",
                                   details={key: ["not a boolean"]})
            value = value.lower() in ("true", "1")
        options[key] = value
    if file_format == "csv" and "delimiter" in options and len(options["delimiter"]) != 1:
        raise InvalidInput("option 'delimiter' must be one character", details={"delimiter": ["one character"]})
    if "task" in options and options["task"] not in ("classification", "binary", "regression"):
        raise InvalidInput(f"option 'task' must be classification, binary or regression, got {options['task']!r}",
                           details={"task": ["unknown task"]})
    return options
