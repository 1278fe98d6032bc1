"""``python -m engine``: list ops, validate a graph, train with a progress bar, predict."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import textwrap
from pathlib import Path

import engine
from engine.errors import EngineError

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """A one-line plot of a series, for the loss curve at the end of training."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * (len(SPARK) - 1) + 0.5))] for v in values)


def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` first); unbounded when the output goes to a pipe or file, so that
    grep and scripts see whole rows."""
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return sys.maxsize


def _table(rows: list[list], header: list[str], width: int | None = None) -> str:
    """Rows under a header in aligned columns; when they are wider than the terminal (or ``width``), the widest
    columns are narrowed and their cells wrap onto continuation lines, so nothing runs past the right edge."""
    width = width or terminal_width()
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    gaps = 2 * (len(widths) - 1)
    # The last column holds free text (a doc, a title): it gives way first, down to a readable width; only then
    # do the widest columns take turns giving up a character each.
    readable = 24
    overflow = sum(widths) + gaps - width
    if overflow > 0 and widths[-1] > readable:
        widths[-1] = max(readable, widths[-1] - overflow)
    while sum(widths) + gaps > width and max(widths) > 8:
        widths[max(range(len(widths)), key=widths.__getitem__)] -= 1
    lines = []
    for index, row in enumerate(cells):
        wrapped = [textwrap.wrap(cell, w, break_on_hyphens=False) or [""] for cell, w in zip(row, widths)]
        for depth in range(max(len(parts) for parts in wrapped)):
            parts = [column[depth] if depth < len(column) else "" for column in wrapped]
            lines.append("  ".join(part.ljust(w) for part, w in zip(parts, widths)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def read_graph(path: str) -> dict:
    """A graph document from a file, or ``zoo:NAME``; JSON errors name the file, line and column."""
    if path.startswith("zoo:"):
        from engine import zoo  # noqa: PLC0415

        return zoo.load(path[4:])
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as error:
        raise EngineError(f"{path}: cannot read ({error.strerror})") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise EngineError(f"{path} line {error.lineno}, column {error.colno}: invalid JSON ({error.msg})") from error


def cmd_ops(args) -> int:
    from engine.registry import catalog  # noqa: PLC0415

    data = catalog()
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    rows = []
    for op in data["ops"]:
        if args.category and op["category"] != args.category:
            continue
        ports = ", ".join(p["name"] for p in op["inputs"])
        params = ", ".join(p["name"] + ("" if p["required"] else f"={p['default']}") for p in op["params"])
        rows.append([op["category"], op["name"], ports, params, op["doc"]])
    print(_table(rows, ["category", "op", "inputs", "params", "doc"]))
    return 0


def cmd_validate(args) -> int:
    from engine.graph import validate  # noqa: PLC0415

    spec = read_graph(args.graph)
    report = validate(spec, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0 if report.ok else 1
    if not report.ok:
        print(f"{args.graph}: {len(report.errors)} problem(s)")
        for error in report.errors:
            parts = (f"node '{error['node']}'" if error["node"] else "", error["field"] or "")
            where = ", ".join(x for x in parts if x)
            print(f"  {where}: {error['message']}" if where else f"  {error['message']}")
        return 1
    rows = []
    for node_id, info in report.nodes.items():
        shapes = "; ".join(
            "(" + ", ".join("N" if s is None else str(s) for s in o["shape"]) + ")" for o in info["outputs"].values()
        )
        rows.append([node_id, info["op"], shapes, f"{info['parameters']:,}", f"{info['flops_per_sample']:,}"])
    print(_table(rows, ["node", "op", "output shape", "parameters", "FLOPs/sample"]))
    print(f"\n{args.graph}: valid; {report.total_parameters:,} parameters, {report.total_flops:,} FLOPs per sample, "
          f"about {report.memory_bytes / 2**20:.1f} MiB to train at batch {report.batch_size}")
    return 0


def _load_dataset(args):
    from engine import data  # noqa: PLC0415

    if Path(args.dataset).suffix:  # a file
        return data.load(args.dataset, **({"target": args.target} if args.target else {}))
    return data.load(args.dataset, seed=args.seed)


def cmd_train(args) -> int:
    from tqdm import tqdm  # noqa: PLC0415

    from engine.trainer import TrainConfig, Trainer  # noqa: PLC0415

    spec = read_graph(args.graph)
    meta = spec.get("metadata", {})
    dataset_name = args.dataset or meta.get("dataset")
    if not dataset_name:
        raise EngineError("name a dataset with --dataset (a built-in name or a .csv/.npz file)")
    args.dataset = dataset_name
    # Checked by the same validator as the web app's (before the dataset is loaded): an error names the option.
    config = TrainConfig.from_dict(training_options_of(args, meta.get("train", {})))
    args.seed = config.seed
    dataset = _load_dataset(args)
    trainer = Trainer(spec, dataset, config=config)
    if args.resume:
        trainer = Trainer.resume(args.resume, dataset, epochs=config.epochs)
    total = (config.epochs - trainer.epoch) * -(-len(trainer.train_data) // config.batch_size)
    bar = tqdm(total=total, unit="batch", dynamic_ncols=True, disable=args.quiet)
    state = {"epoch": trainer.epoch}

    def on_batch(event):
        bar.update(1)
        if event["batch"] % 5 == 0 or event["batch"] == event["batches"]:
            postfix = {"epoch": f"{event['epoch']}/{config.epochs}", "loss": f"{event['loss']:.4f}",
                       "samples/s": f"{event['samples_per_second']:,.0f}"}
            if state.get("val"):
                postfix.update(state["val"])
            bar.set_postfix(postfix, refresh=False)

    def on_epoch(event):
        summary = {f"val_{k}": f"{v:.4f}" for k, v in event.get("val_metrics", {}).items() if isinstance(v, float)}
        if "val_loss" in event:
            summary["val_loss"] = f"{event['val_loss']:.4f}"
        state["val"] = summary
        # The epoch's validation runs after its last batch: show it now, so the bar's last frame (drawn by
        # close) carries the final epoch's metrics rather than the previous one's.
        postfix = {"epoch": f"{event['epoch']}/{config.epochs}", "loss": f"{event['loss']:.4f}",
                   "samples/s": f"{event.get('samples_per_second', 0):,.0f}", **summary}
        bar.set_postfix(postfix, refresh=True)

    trainer.on("batch_end", on_batch).on("epoch_end", on_epoch)
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        trainer.cancel()
        bar.close()
        print("interrupted", file=sys.stderr)
        return 130
    bar.close()
    out = Path(args.out or f"runs/{Path(args.graph.removeprefix('zoo:')).stem}")
    trainer.save_model(out)
    final = result.final
    rows = [["loss", f"{final.get('loss', float('nan')):.4f}", f"{final.get('val_loss', float('nan')):.4f}"]]
    for name, value in final.get("metrics", {}).items():
        if isinstance(value, float):
            rows.append([name, f"{value:.4f}", f"{final.get('val_metrics', {}).get(name, float('nan')):.4f}"])
    print(_table(rows, ["metric", "train", "validation"]))
    print(f"loss by epoch  {sparkline([r['loss'] for r in result.history])}")
    print(f"{result.status} after {result.epochs_completed} epoch(s), {result.steps} steps; model saved to {out}")
    return 0


def training_options_of(args, recommended: dict) -> dict:
    """The training options the flags give, over the graph's recommended ones (``metadata.train``);
    what neither gives keeps the schema's default."""
    options = {key: value for key, value in recommended.items() if key in ("epochs", "batch_size", "optimizer")}
    if args.optimizer:
        options["optimizer"] = {"name": args.optimizer}
    if args.lr is not None:
        optimizer = options.get("optimizer") or {"name": "adam"}
        options["optimizer"] = {**({"name": optimizer} if isinstance(optimizer, str) else optimizer), "lr": args.lr}
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed, "device": args.device,
             "validation_fraction": args.validation_fraction, "checkpoint_dir": args.checkpoint_dir}
    options.update({key: value for key, value in flags.items() if value is not None})
    if args.patience is not None:
        options["early_stopping"] = {"patience": args.patience}
    return options


def cmd_options(args) -> int:
    from engine.training_options import schema  # noqa: PLC0415

    data = schema()
    if args.json:
        print(json.dumps(data, indent=1, ensure_ascii=False))
        return 0

    def rows_of(prefix: str, params: list[dict]) -> list[list]:
        return [[prefix + p["name"], p["type"], "required" if p["required"] else json.dumps(p["default"]), p["doc"]]
                for p in params]

    rows = rows_of("", data["options"]) + rows_of("early_stopping.", data["early_stopping"])
    for kind in ("optimizers", "schedules"):
        for entry in data[kind]:
            rows += rows_of(f"{kind[:-1]} {entry['name']}: ", entry["params"])
    print(_table(rows, ["option", "type", "default", "doc"]))
    return 0


def cmd_predict(args) -> int:
    import numpy  # noqa: PLC0415

    from engine.inference import load_model  # noqa: PLC0415

    predictor = load_model(args.model)
    try:
        with numpy.load(args.input, allow_pickle=False) as archive:
            inputs = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise EngineError(f"{args.input}: cannot be read as .npz ({error})") from error
    if len(predictor.feature_inputs) == 1 and predictor.feature_inputs[0] not in inputs:
        key = args.key or ("x" if "x" in inputs else next(iter(inputs), None))
        if key not in inputs:
            raise EngineError(f"{args.input}: no array '{key}'; arrays present: {sorted(inputs)}")
        inputs = {predictor.feature_inputs[0]: inputs[key]}
    result = predictor.predict(inputs)
    out = Path(args.out) if args.out else Path(args.input).with_suffix(".predictions.npz")
    arrays = {f"output_{k}": v for k, v in result["outputs"].items()}
    for key in ("probabilities", "classes", "values"):
        if key in result:
            arrays[key] = result[key]
    numpy.savez(out, **arrays)
    shown = result.get("labels") or result.get("classes", result.get("values"))
    rows = [[i, shown[i] if not hasattr(shown[i], "tolist") else shown[i].tolist()] for i in range(min(10, len(shown)))]
    print(_table(rows, ["row", "prediction"]))
    print(f"{len(shown)} prediction(s) saved to {out}")
    return 0


def cmd_datasets(args) -> int:
    from engine import data  # noqa: PLC0415

    rows = [[d["name"], d["task"], d.get("description", "")] for d in data.list_builtin()]
    print(_table(rows, ["dataset", "task", "description"]))
    return 0


def cmd_zoo(args) -> int:
    from engine import zoo  # noqa: PLC0415

    rows = [[m["name"], m["dataset"], f"{m['expected']['metric']} >= {m['expected']['at_least']}", m["title"]]
            for m in zoo.info()]
    print(_table(rows, ["model", "dataset", "quality in tests", "title"]))
    return 0


def version_text() -> str:
    import numpy  # noqa: PLC0415 - only --version needs it named

    return f"netforge engine {engine.__version__} (Python {platform.python_version()}, NumPy {numpy.__version__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="NetForge engine command line",
                                     epilog="exit status: 0 success, 1 failure (a message on stderr), 2 usage error")
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ops", help="list the op catalog")
    p.add_argument("--json", action="store_true", help="print the catalog as JSON")
    p.add_argument("--category")
    p.set_defaults(func=cmd_ops)
    p = sub.add_parser("validate", help="check a graph file and print its shapes")
    p.add_argument("graph", help="graph JSON file, or zoo:NAME")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("train", help="train a graph on a dataset with a progress bar")
    p.add_argument("graph", help="graph JSON file, or zoo:NAME")
    p.add_argument("--dataset", help="built-in dataset name or a .csv/.npz/.idx file (default: the graph's)")
    p.add_argument("--target", help="target column of a CSV file")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--device", choices=["cpu", "gpu"], help="default cpu")
    p.add_argument("--validation-fraction", type=float, help="default 0.2")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs")
    p.add_argument("--checkpoint-dir", help="write a checkpoint here after every epoch")
    p.add_argument("--resume", help="continue from this checkpoint folder")
    p.add_argument("--out", help="where to save the trained model (default runs/<graph name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("options", help="list the training options (optimizers, schedules, early stopping)")
    p.add_argument("--json", action="store_true", help="print the schema as JSON")
    p.set_defaults(func=cmd_options)
    p = sub.add_parser("predict", help="predict with a saved model on an .npz file")
    p.add_argument("model")
    p.add_argument("input")
    p.add_argument("--key", help="array in the .npz holding the features (default x)")
    p.add_argument("--out")
    p.set_defaults(func=cmd_predict)
    sub.add_parser("datasets", help="list the built-in datasets").set_defaults(func=cmd_datasets)
    sub.add_parser("zoo", help="list the model zoo").set_defaults(func=cmd_zoo)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EngineError, OSError) as error:
        # 2 stays argparse's, for a command line it cannot parse; a command that ran and failed answers 1.
        print(f"error: {error}", file=sys.stderr)
        return 1
