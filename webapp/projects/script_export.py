"""A graph version as a standalone Python training script: the engine graph embedded as JSON, the
dataset loaded as the training worker loads it, the run's training options, progress and final
metrics printed, and the model saved with ``engine.serialization``. The script needs only the
``engine`` package, not the web app.

``training_script`` is a pure function of the graph, a description of the dataset and the training
options; the web app builds the description from its dataset record.
"""

from __future__ import annotations

import dataclasses
import json
import pprint

# How the worker reads each stored upload format (webapp.datasets.selectors.load_engine_dataset).
UPLOAD_LOADERS = {"csv": "load_csv", "npz": "load_npz", "idx": "load_idx"}


@dataclasses.dataclass(frozen=True)
class ScriptDataset:
    """What the script needs to know to load a dataset as the worker does."""

    name: str  # the dataset's name in NetForge
    builtin_name: str = ""  # engine.data.load_builtin name, for built-ins
    options: dict = dataclasses.field(default_factory=dict)  # keyword arguments of the loader
    file_format: str = ""  # uploads: csv | npz | idx (the stored file's loader)
    file_name: str = ""  # uploads: the file's name, the default of --data
    download_path: str = ""  # uploads: where NetForge serves the file, for the docstring

    @property
    def is_builtin(self) -> bool:
        return bool(self.builtin_name)


def training_script(*, spec: dict, dataset: ScriptDataset, hyperparameters: dict, title: str = "",
                    script_name: str = "train.py", model_folder: str = "model", origin: str = "the web app",
                    device: str = "cpu") -> str:
    """The Python source of a script (to be saved as ``script_name``) that trains ``spec`` on
    ``dataset`` with ``hyperparameters`` (TrainConfig fields, as a run stores them) and saves the
    model in ``model_folder``. ``origin`` says whose training options these are (a run's, say) and
    ``device`` is the default of --device."""
    if not dataset.is_builtin and dataset.file_format not in UPLOAD_LOADERS:
        raise ValueError(f"no loader for stored format {dataset.file_format!r}")
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be cpu or gpu, got {device!r}")
    title = _plain(title or "a NetForge graph")
    data_name = _plain(dataset.name)
    command = f"python {_plain(script_name)}"
    usage = [f"    {command}", f"    {command} --epochs 3 --out {_plain(model_folder)}"]
    if dataset.is_builtin:
        data_note = [f'The data is the built-in dataset "{_plain(dataset.builtin_name)}" of engine.data,',
                     "made as the NetForge worker makes it."]
    else:
        usage.append(f"    {command} --data path/to/{_plain(dataset.file_name)}")
        data_note = [f'The data is the uploaded file "{_plain(dataset.file_name)}",',
                     "read from the current folder unless --data names another path."]
        if dataset.download_path:
            data_note.append(f"Download it from NetForge: GET {_plain(dataset.download_path)}")
    lines = [
        "#!/usr/bin/env python3",
        f'"""Train {title} on the dataset "{data_name}" with the NetForge engine.',
        "",
        f"Exported from NetForge: the graph, the data and the training options of {_plain(origin)}, in a script",
        "that needs only the `engine` package (the NetForge repository on PYTHONPATH, or `pip install -e .`",
        "in it). It prints each epoch's losses and metrics, then the final ones, and saves the trained model.",
        "",
        *usage,
        "",
        *data_note,
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import argparse",
        "import json",
        "",
        "from engine import data",
        "from engine.trainer import TrainConfig, Trainer",
        "",
        "# The graph in the engine's format (netforge.graph/1), as NetForge saved it.",
        f"GRAPH = {_json_literal(spec)}",
        "",
        "# The training options (engine.trainer.TrainConfig fields); --epochs and --device override two of them.",
        f"TRAINING = {pprint.pformat(hyperparameters, sort_dicts=False, width=100)}",
        "",
        f"MODEL_FOLDER = {model_folder!r}",
    ]
    if not dataset.is_builtin:
        lines.append(f"DATA_FILE = {dataset.file_name!r}")
    lines += ["", "", *_loader(dataset), "", "", *_REPORTING, "", "", *_main(dataset, device), ""]
    return "\n".join(lines)


def _loader(dataset: ScriptDataset) -> list[str]:
    if dataset.is_builtin:
        call = f"data.load_builtin({dataset.builtin_name!r}{_keyword_arguments(dataset.options)})"
        signature, doc = "def load_dataset() -> data.Dataset:", "The built-in dataset, with the options NetForge used."
    else:
        call = f"data.{UPLOAD_LOADERS[dataset.file_format]}(path{_keyword_arguments(dataset.options)})"
        signature = "def load_dataset(path: str) -> data.Dataset:"
        doc = "The uploaded file, read by the engine's loader with the options NetForge used."
    return [
        signature,
        f'    """{doc}"""',
        f"    dataset = {call}",
        f"    dataset.name = {dataset.name!r}",
        "    return dataset",
    ]


_REPORTING = [
    "def numbers(record: dict) -> dict:",
    '    """The losses and metrics of an epoch record, by name (val_ for the validation split)."""',
    '    values = {"loss": record.get("loss"), **(record.get("metrics") or {})}',
    '    if "val_loss" in record:',
    '        values["val_loss"] = record["val_loss"]',
    '        values.update({f"val_{name}": value for name, value in (record.get("val_metrics") or {}).items()})',
    "    return values",
    "",
    "",
    "def shown(value) -> str:",
    '    return f"{value:.4f}" if isinstance(value, int | float) else "n/a"',
    "",
    "",
    "def print_epoch(record: dict, epochs: int) -> None:",
    '    values = "  ".join(f"{name} {shown(value)}" for name, value in numbers(record).items())',
    """    print(f"epoch {record['epoch']}/{epochs}  {values}  ({record['seconds']:.1f} s)", flush=True)""",
]


def _main(dataset: ScriptDataset, device: str) -> list[str]:
    lines = [
        "def main() -> None:",
        '    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])',
    ]
    if not dataset.is_builtin:
        lines.append('    parser.add_argument("--data", default=DATA_FILE, help="dataset file (default %(default)s)")')
    lines += [
        '    parser.add_argument("--epochs", type=int, default=TRAINING["epochs"], help="epochs to train")',
        f'    parser.add_argument("--device", choices=["cpu", "gpu"], default={device!r}, help="gpu needs CuPy")',
        '    parser.add_argument("--out", default=MODEL_FOLDER, help="folder to save the trained model in")',
        "    args = parser.parse_args()",
        "",
        f"    dataset = load_dataset({'' if dataset.is_builtin else 'args.data'})",
        '    config = TrainConfig.from_dict({**TRAINING, "epochs": args.epochs, "device": args.device})',
        "    trainer = Trainer(GRAPH, dataset, config=config)",
        "    validation = len(trainer.validation_data) if trainer.validation_data is not None else 0",
        '    print(f"{dataset.name}: training on {len(trainer.train_data)} rows, validating on {validation}; "',
        '          f"{trainer.model.parameter_count():,} parameters", flush=True)',
        '    trainer.on("epoch_end", lambda record: print_epoch(record, config.epochs))',
        "    result = trainer.run()",
        "",
        '    print(f"{result.status} after {result.epochs_completed} epoch(s)")',
        "    for name, value in numbers(result.final).items():",
        '        print(f"final {name}: {shown(value)}")',
        "    # engine.serialization's model folder: graph.json, weights.npz and manifest.json (no pickle).",
        "    folder = trainer.save_model(args.out)",
        '    print(f"model saved in {folder}; load it with engine.load_model({str(folder)!r})")',
        "",
        "",
        'if __name__ == "__main__":',
        "    main()",
    ]
    return lines


def _json_literal(value) -> str:
    """``json.loads(r'''...''')`` of the value as readable JSON, to read and edit in place; a
    plain string literal where the JSON holds three quotes in a row."""
    text = _readable_json(value)
    if "'''" in text:
        return f"json.loads({text!r})"
    return f"json.loads(r'''\n{text}\n''')"


def _readable_json(value) -> str:
    """JSON with one line per top-level key and one line per item of a top-level list (the nodes)."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value)
    entries = []
    for key, item in value.items():
        if isinstance(item, list) and item:
            rows = ",\n".join(f"    {json.dumps(element)}" for element in item)
            entries.append(f"  {json.dumps(key)}: [\n{rows}\n  ]")
        else:
            entries.append(f"  {json.dumps(key)}: {json.dumps(item)}")
    return "{\n" + ",\n".join(entries) + "\n}"


def _keyword_arguments(options: dict) -> str:
    if not options:
        return ""
    if all(isinstance(key, str) and key.isidentifier() for key in options):
        return "".join(f", {key}={value!r}" for key, value in options.items())
    return f", **{options!r}"


def _plain(text: str) -> str:
    """Text for the docstring: one line, no quotes or backslashes that could end or escape it."""
    return "".join(c if c.isprintable() and c not in '\\"' else " " for c in str(text)).strip()
