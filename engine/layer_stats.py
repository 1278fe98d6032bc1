"""Per-layer statistics of a training run, sampled at a bounded rate from the tensors a step has.

A ``LayerStatsSampler`` rides along the trainer's loop (``Trainer.watch_layers``). On a sampled
step it sees every node's output as the forward pass makes it (``Model.run``'s ``observer``), the
parameter gradients the backward pass returns and the weights before and after the optimizer's
update; it never runs a pass of its own, except once on the step whose loss is not finite, to
find the node that produced the first NaN or Inf (with the same batch, weights and dropout draws).

Per node (``node_stats``):

- nodes with trainable weights: ``weight_norm`` = ||w||, ``grad_norm`` = ||dL/dw|| and
  ``update_ratio`` = ||w_after - w_before|| / ||w_before||, over all the node's trainable weights;
- watched activations (every node's first output by default): ``mean`` and ``std`` of the finite
  values, ``histogram``: counts in the fixed bins of ``HISTOGRAM_EDGES`` (the same for every node and
  step, so a node's histograms line up over time), ``non_finite``: how many values are NaN or Inf;
  ``dead_fraction`` (ReLU): the share of units (positions of a sample) that are zero for every
  sample of the batch; ``saturation`` (tanh, sigmoid): the share of values within
  ``SATURATION_MARGIN`` of the bounds.

Rate: a sample costs about ``FIRST_SAMPLE_COST_IN_STEPS`` training steps (it reads every
activation a few times), so the first is taken after ``FIRST_SAMPLE_COST_IN_STEPS / max_overhead``
steps, and each next one when at least ``every_steps`` steps and ``min_seconds`` seconds have passed
since the last, and at least the last sample's measured cost divided by ``max_overhead``: sampling
takes at most about that share of the training time, from the start and whatever the graph's size.
A run shorter than the first sample's step has none (but its NaN, if any, is still attributed).
"""

from __future__ import annotations

import dataclasses
import math
import time

from engine import backend
from engine.errors import EngineError

# Bin edges of the activation histograms: 0 and +-2^k for k in -4..4, open-ended at both sides;
# values beyond +-16 fall in the outer bins.
_MAGNITUDES = [2.0 ** k for k in range(-4, 5)]
HISTOGRAM_EDGES: tuple[float, ...] = (-math.inf, *(-m for m in reversed(_MAGNITUDES)), 0.0, *_MAGNITUDES, math.inf)
HISTOGRAM_BINS = len(HISTOGRAM_EDGES) - 1
SATURATION_MARGIN = 0.01
SATURATING_OPS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
DEAD_UNIT_OPS = frozenset({"relu"})
# What a sample costs, in training steps of the same graph and batch (measured on an MLP, a CNN with
# batch norm and a 1,000-node chain: 1.2 to 1.6).
FIRST_SAMPLE_COST_IN_STEPS = 2


@dataclasses.dataclass(frozen=True)
class LayerStatsOptions:
    """How often statistics are sampled and of which activations.

    ``every_steps``: at least this many steps between samples (0 turns sampling off);
    ``min_seconds``: at least this long between samples; ``max_overhead``: the share of training
    time sampling may take; ``nodes``: the node ids whose outputs are watched (None: every node's);
    ``first_step``: the first sample's step, counted from the first step the sampler sees (a
    resumed run's too; None: chosen by ``max_overhead``).
    """

    every_steps: int = 20
    min_seconds: float = 1.0
    max_overhead: float = 0.02
    nodes: tuple[str, ...] | None = None
    first_step: int | None = None

    def __post_init__(self):
        if isinstance(self.every_steps, bool) or not isinstance(self.every_steps, int) or self.every_steps < 0:
            raise EngineError(f"layer statistics: every_steps must be a whole number >= 0, got {self.every_steps!r}")
        if not isinstance(self.min_seconds, int | float) or not self.min_seconds >= 0:
            raise EngineError(f"layer statistics: min_seconds must be a number >= 0, got {self.min_seconds!r}")
        if not isinstance(self.max_overhead, int | float) or not 0 < self.max_overhead <= 1:
            raise EngineError(f"layer statistics: max_overhead must be in (0, 1], got {self.max_overhead!r}")
        if self.first_step is not None and (isinstance(self.first_step, bool) or not isinstance(self.first_step, int)
                                            or self.first_step < 1):
            raise EngineError(f"layer statistics: first_step must be a whole number >= 1, got {self.first_step!r}")

    @property
    def enabled(self) -> bool:
        return self.every_steps > 0


def activation_stats(values, op_name: str) -> dict:
    """Mean, std, histogram, non-finite count, and for ReLU the dead fraction and for tanh and
    sigmoid the saturation of one node's output ``values`` (the batch first)."""
    xp = backend.array_module(values)
    flat = values.reshape(-1)
    finite_mask = xp.isfinite(flat)
    finite_count = int(finite_mask.sum())
    non_finite = int(flat.size) - finite_count
    finite = flat if non_finite == 0 else flat[finite_mask]
    stats: dict = {"non_finite": non_finite}
    if finite_count:
        stats["mean"] = float(finite.mean(dtype=xp.float64))
        stats["std"] = float(finite.std(dtype=xp.float64))
        stats["histogram"] = histogram(finite)
    else:
        stats.update(mean=None, std=None, histogram=[0] * HISTOGRAM_BINS)
    if op_name in DEAD_UNIT_OPS and values.ndim >= 1 and values.shape[0] > 0:
        per_unit = values.reshape(values.shape[0], -1)
        stats["dead_fraction"] = float((per_unit == 0).all(axis=0).mean()) if per_unit.shape[1] else 0.0
    if op_name in SATURATING_OPS and flat.size:
        low, high = SATURATING_OPS[op_name]
        saturated = (flat <= low + SATURATION_MARGIN) | (flat >= high - SATURATION_MARGIN)
        stats["saturation"] = float(saturated.mean())
    return stats


def histogram(values) -> list[int]:
    """Counts of finite ``values`` in the bins of ``HISTOGRAM_EDGES`` (bin i holds edge i <= x <
    edge i+1). The edges are 0 and +-2^k, so a value's bin follows from its binary exponent
    (``frexp``): a few cheap passes, where a search among the edges costs a hundred times more."""
    xp = backend.array_module(values)
    magnitude = xp.abs(values)
    mantissa, exponent = xp.frexp(magnitude)  # magnitude = mantissa * 2^exponent, mantissa in [0.5, 1)
    exponent = exponent.astype(xp.int64)
    steps = len(_MAGNITUDES)  # edges on each side of 0
    low = int(round(math.log2(_MAGNITUDES[0])))
    # x >= 0: the positive edges 2^k <= x are those with k <= exponent - 1.
    positive = steps + 1 + xp.clip(exponent - low, 0, steps)
    # x < 0: the negative edges -2^k <= x are those with 2^k >= |x|, k >= ceil(log2 |x|).
    ceiling = exponent - (mantissa == 0.5)
    negative = steps - xp.clip(ceiling - low, 0, steps)
    bins = xp.where(values >= 0, xp.where(magnitude == 0, steps + 1, positive), negative)  # 0: in [0, 2^low)
    return [int(count) for count in backend.to_numpy(xp.bincount(bins.reshape(-1), minlength=HISTOGRAM_BINS))]


def _norm(arrays) -> float:
    """The Euclidean norm of several arrays taken as one vector (float64 sums; not BLAS's dot,
    whose threads a training step may be holding)."""
    total = 0.0
    for array in arrays:
        xp = backend.array_module(array)
        wide = array.astype(xp.float64)
        total += float(xp.multiply(wide, wide, out=wide).sum())
    return math.sqrt(total) if math.isfinite(total) else total


def _is_finite(value) -> bool:
    if not hasattr(value, "dtype") or value.dtype.kind not in "fc":
        return True
    xp = backend.array_module(value)
    return bool(xp.isfinite(value).all())


class LayerStatsSampler:
    """Samples a model's per-layer statistics during training; see the module docstring.

    The trainer calls ``begin_step`` before each step's forward pass (its observer, or None when
    the step is not sampled), ``after_backward`` and ``after_update`` around the optimizer step of
    a sampled step (the latter returns the sample), and ``non_finite_loss`` when a step's loss is
    not finite (returns the sample that names the node that produced the first NaN or Inf).
    """

    def __init__(self, model, options: LayerStatsOptions | None = None, *, clock=time.perf_counter):
        self.model = model
        self.options = options or LayerStatsOptions()
        self.clock = clock
        analysis = model.analysis
        loss_node = analysis.producers.get(analysis.loss)
        watched = self.options.nodes
        if watched is not None:
            unknown = sorted(set(watched) - set(analysis.nodes))
            if unknown:
                raise EngineError(f"layer statistics: node(s) {unknown} are not in the graph")
        # Node ids of the weighted nodes, with their trainable weights' keys, in forward order.
        self.weighted: dict[str, tuple[str, ...]] = {}
        self.watched: set[str] = set()
        for node_id in analysis.order:
            node = analysis.nodes[node_id]
            keys = tuple(f"{node_id}/{w.name}" for w in node.weights if w.trainable)
            if keys:
                self.weighted[node_id] = keys
            if node_id != loss_node and (watched is None or node_id in watched):
                self.watched.add(node_id)
        self.origins = dict(analysis.origins)  # an expanded block's inner node -> the block node drawn
        self.samples_taken = 0
        self.seconds_spent = 0.0
        self.nan: dict | None = None  # where the first NaN or Inf appeared
        self._last_step: int | None = None
        self._first_seen: int | None = None  # the first step this sampler saw (a resumed run starts late)
        self._last_time = -math.inf
        self._last_cost = 0.0
        self._sample: dict | None = None
        self._cost = 0.0  # seconds the sample in progress has taken so far
        self._weights_before: dict | None = None
        self._rng_state = None

    # -- the trainer's hooks -----------------------------------------------------------------
    def due(self, step: int) -> bool:
        """Whether ``step`` (1-based) is sampled."""
        options = self.options
        if not options.enabled:
            return False
        if self._last_step is None:
            if self._first_seen is None:
                self._first_seen = step
            first = options.first_step or math.ceil(FIRST_SAMPLE_COST_IN_STEPS / options.max_overhead) + 1
            return step - self._first_seen + 1 >= first
        wait = max(options.min_seconds, self._last_cost / options.max_overhead)
        return step - self._last_step >= options.every_steps and self.clock() - self._last_time >= wait

    def begin_step(self, step: int):
        """The observer to pass to this step's forward pass, or None when it is not sampled."""
        self._rng_state = self.model.rng_state()  # to replay the step's dropout if its loss is not finite
        if not self.due(step):
            return None
        self._cost = 0.0
        self._sample = {"step": step, "nodes": {}}
        return self._observe

    def after_backward(self, grads: dict | None) -> None:
        """Weight and gradient norms, and a copy of the weights to measure the update by."""
        started = self.clock()
        params = self.model.params
        nodes = self._sample["nodes"]
        self._weights_before = {}
        for node_id, keys in self.weighted.items():
            entry = nodes.setdefault(node_id, self._entry(node_id))
            weights = [params[key] for key in keys]
            entry["weight_norm"] = _norm(weights)
            self._weights_before[node_id] = [w.copy() for w in weights]
            node_grads = [grads[key] for key in keys if grads is not None and key in grads]
            entry["grad_norm"] = _norm(node_grads) if node_grads else None
            if entry["grad_norm"] is not None and not math.isfinite(entry["grad_norm"]) and self.nan is None:
                self.nan = {"step": self._sample["step"], "node": node_id, "where": "gradient"}
        self._cost += self.clock() - started

    def after_update(self, *, epoch: float) -> dict:
        """The update/weight ratios; returns the finished sample (JSON-ready)."""
        started = self.clock()
        params = self.model.params
        nodes = self._sample["nodes"]
        for node_id, before in (self._weights_before or {}).items():
            after = [params[key] for key in self.weighted[node_id]]
            change = _norm([a - b for a, b in zip(after, before)])
            weight_norm = nodes[node_id]["weight_norm"]
            nodes[node_id]["update_ratio"] = change / weight_norm if weight_norm else None
        self._weights_before = None
        self._cost += self.clock() - started
        return self._finish(epoch)

    def non_finite_loss(self, feeds: dict, *, step: int, epoch: float, loss: float) -> dict:
        """The sample of a step whose loss is ``loss`` (NaN or Inf): the step's forward pass is run
        again, with the dropout draws it had, to find the first node whose output is not finite."""
        started = self.clock()
        sample, self._sample = self._sample, {"step": step, "nodes": {}}
        if self.nan is None or (self.nan["step"] == step and self.nan["where"] == "output"):
            # Data fed NaN or Inf: the first node that reads it is not the one to blame.
            model = self.model
            for name, value in model.prepare_feeds(feeds, model._needed_inputs((model.loss_key,))).items():
                if not _is_finite(value):
                    self.nan = {"step": step, "node": None, "input": name, "where": "input"}
                    break
        if self.nan is None:
            self.model.set_rng_state(self._rng_state)
            self.model.run(feeds, (self.model.loss_key,), training=True, observer=self._observe)
        if self.nan is None:  # the forward was finite: the loss went bad elsewhere (another worker's share)
            self.nan = {"step": step, "node": None, "where": "loss"}
        if sample is not None:  # a sampled step: keep its gradient statistics too
            for node_id, entry in sample["nodes"].items():
                self._sample["nodes"].setdefault(node_id, {}).update(entry)
        self._sample["loss"] = None if math.isnan(loss) else loss
        self._cost = self.clock() - started
        return self._finish(epoch)

    # -- internals -----------------------------------------------------------------------------
    def _entry(self, node_id: str) -> dict:
        node = self.model.analysis.nodes[node_id]
        entry = {"op": node.op.name}
        if node_id in self.origins:
            entry["block"] = self.origins[node_id]
        return entry

    def _observe(self, node, output) -> None:
        """Called by ``Model.run`` with each node's output(s), in forward order."""
        started = self.clock()
        try:
            self._observe_output(node, output)
        finally:
            self._cost += self.clock() - started

    def _observe_output(self, node, output) -> None:
        first = output[0] if isinstance(output, tuple) else output
        if node.id in self.watched and hasattr(first, "dtype") and first.dtype.kind == "f":
            entry = self._sample["nodes"].setdefault(node.id, self._entry(node.id))
            entry.update(activation_stats(first, node.op.name))
            finite = entry["non_finite"] == 0 and all(
                _is_finite(value) for value in (output[1:] if isinstance(output, tuple) else ()))
        elif self.nan is None:
            finite = all(_is_finite(value) for value in (output if isinstance(output, tuple) else (output,)))
        else:
            return
        if not finite and self.nan is None:
            self.nan = {"step": self._sample["step"], "node": node.id, "where": "output"}
            if node.id in self.origins:
                self.nan["block"] = self.origins[node.id]

    def _finish(self, epoch: float) -> dict:
        sample, self._sample = self._sample, None
        sample["epoch"] = epoch
        sample["wall_time"] = time.time()
        sample["nan"] = self.nan
        for entry in sample["nodes"].values():  # JSON has no NaN or Inf: a norm that overflowed is null
            for key, value in entry.items():
                if isinstance(value, float) and not math.isfinite(value):
                    entry[key] = None
        now = self.clock()
        self._last_cost = self._cost
        self.seconds_spent += self._last_cost
        self._last_step, self._last_time = sample["step"], now
        self.samples_taken += 1
        return sample


__all__ = ["HISTOGRAM_BINS", "HISTOGRAM_EDGES", "LayerStatsOptions", "LayerStatsSampler", "activation_stats"]
