"""One process of a test's distributed group (``python -m tests.distributed.rank_process CONFIG``).

``transport`` in the config is the worker's (``DataParallelWorker(transport_name=...)``; default
``NETFORGE_DISTRIBUTED_TRANSPORT``, unset here: shared memory, the processes being on one machine).
Roles: ``train`` (a data-parallel trainer that saves its weights after every step to
``<out>/rank<r>-step<k>.npz``), ``allreduce`` (all-reduces buffers of the ``sizes``
and saves the results and byte counts), ``server`` (the parameter server), ``idle`` (joins the
group, then sleeps: a peer that stops answering), ``leave`` (joins, then leaves
the group at once, its gRPC server still up).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy

import engine
from engine.data import load
from workers.distributed.errors import DistributedError
from workers.distributed.worker import DataParallelWorker, serve_parameters


def contribution(rank: int, index: int, size: int, dtype: str) -> numpy.ndarray:
    """What rank ``rank`` all-reduces as its ``index``-th buffer."""
    return numpy.random.default_rng(1000 * rank + index).standard_normal(size).astype(dtype)


def tiny_spec(features: int = 2, classes: int = 2, hidden: int = 8) -> dict:
    graph = engine.GraphBuilder()
    x = graph.input("x", [None, features])
    y = graph.input("y", [None], dtype="int64")
    hidden_layer = graph.tanh(graph.dense(x, units=hidden, id="fc1"), id="act1")
    logits = graph.dense(hidden_layer, units=classes, id="logits")
    graph.loss(graph.softmax_cross_entropy(logits, y, id="loss"))
    graph.output("prediction", logits)
    return graph.to_spec()


def tiny_dataset(rows: int):
    return load("moons", n_samples=rows, seed=3)


def train_config(config: dict) -> dict:
    return {"epochs": config["epochs"], "batch_size": config["batch_size"], "optimizer": config["optimizer"],
            "dtype": config["dtype"], "validation_fraction": 0.0, "seed": 5, "train_metrics": True}


def save_after_every_step(trainer, out: Path, prefix: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    trainer.on("batch_end", lambda event: numpy.savez(out / f"{prefix}-step{event['step']}.npz",
                                                      loss=numpy.array(event["loss"]), **{
                                                          key.replace("/", "__"): value
                                                          for key, value in trainer.model.state_arrays().items()}))


def main(config: dict) -> int:
    role = config["role"]
    out = Path(config["out"])
    if role == "server":
        server = serve_parameters(config["redis_url"], config["group"], world_size=config["world_size"],
                                  dtype=config["dtype"], timeout=config.get("timeout", 60),
                                  staleness=config.get("staleness"), optimizer=config.get("optimizer"))
        (out / "server.json").write_text(json.dumps({
            "bytes_sent": server.counter.payload, "max_lead": server.max_lead, "updates": server.updates_applied}))
        if server.weights is not None:
            numpy.save(out / "server-weights.npy", server.weights)
        return 0
    worker = DataParallelWorker(config["redis_url"], config["group"], rank=config["rank"],
                                world_size=config["world_size"], strategy=config.get("strategy", "allreduce"),
                                dtype=config["dtype"], timeout=config.get("timeout", 60),
                                rendezvous_timeout=config.get("rendezvous_timeout"),
                                min_world_size=config.get("min_world_size"), staleness=config.get("staleness"),
                                transport_name=config.get("transport"))
    try:
        worker.join()
    except DistributedError as error:
        (out / f"rank{config['rank']}-error.json").write_text(json.dumps(
            {"type": type(error).__name__, "message": str(error)}))
        return 4
    if role == "idle":
        time.sleep(3600)
        return 0
    if role == "leave":  # a worker that stops early (its epochs ran out first), its server still up
        worker.rendezvous.leave()
        time.sleep(60)
        return 0
    if role == "allreduce":
        results = {}
        began = time.monotonic()
        try:
            for index, size in enumerate(config["sizes"]):
                buffer = contribution(config["rank"], index, size, config["dtype"])
                before = worker.bytes_sent
                worker.collective.all_reduce(buffer)
                results[f"sum{index}"] = buffer
                results[f"bytes{index}"] = numpy.array(worker.bytes_sent - before)
        except DistributedError as error:
            (out / f"rank{config['rank']}-error.json").write_text(json.dumps(
                {"type": type(error).__name__, "message": str(error), "seconds": time.monotonic() - began}))
            worker.abort(str(error))
            return 3
        numpy.savez(out / f"rank{config['rank']}.npz", group_rank=numpy.array(worker.rank),
                    collective=numpy.array(type(worker.collective).__name__),
                    world_size=numpy.array(worker.world_size), **results)
        worker.finish()
        return 0
    trainer = engine.Trainer(tiny_spec(), tiny_dataset(config["rows"]), config=train_config(config),
                             shard=(config["rank"], config["world_size"]))
    trainer.reduce_gradients = worker.make_reducer(trainer.model.params, on_stop=trainer.cancel,
                                                   order=trainer.model.gradient_order(),
                                                   **({"bucket_bytes": config["bucket_bytes"]}
                                                      if "bucket_bytes" in config else {}))
    save_after_every_step(trainer, out, f"rank{config['rank']}")
    if config.get("seconds_per_step"):  # a slow worker
        trainer.on("batch_end", lambda event: time.sleep(config["seconds_per_step"]))
    if config.get("stop_at_step"):
        reducer = worker.reducer
        trainer.on("batch_end", lambda event: event["step"] == config["stop_at_step"] - 1 and config["rank"] == 0
                   and reducer.request_stop())
    result = trainer.run()
    (out / f"rank{config['rank']}.json").write_text(json.dumps({"status": result.status, "steps": result.steps}))
    worker.finish()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(main(json.loads(sys.argv[1])))
