"""A compiled graph: weights, and execution plans that run forward and backward many times.

``Model(spec)`` validates the document once, creates the weights (seeded), and compiles, per set
of requested values, a plan: the nodes in topological order with their argument keys, which
values can be dropped after which node, and for training the reverse sweep that computes
vector-Jacobian products only where a gradient is needed.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy

from engine import backend, initializers, parallel
from engine.errors import EngineError
from engine.graph import Analysis, Node, analyze
from engine.ops._util import SHARED_WORKSPACE, format_shape
from engine.registry import FLOAT_DTYPES, Context


@dataclasses.dataclass
class _Step:
    node: Node
    args: list  # per input port: a value key, a list of keys (variadic) or None (absent)
    weight_keys: tuple[str, ...]
    release: tuple[str, ...]  # value keys no longer needed once this step has run (inference)


@dataclasses.dataclass
class _BackStep:
    node: Node
    ctx_index: int
    grad_keys: list  # per input port: key / list of keys / None, for those that need a gradient
    weight_grad_keys: tuple  # per weight: its key if it is trainable, else None
    needs: tuple
    gradients_done: tuple = ()  # parameter keys whose gradient no later step adds to


@dataclasses.dataclass
class _Plan:
    steps: list[_Step]
    backward: list[_BackStep] | None
    targets: tuple[str, ...]
    input_names: list[str]  # graph inputs the steps read
    backward_needs: dict[int, tuple]  # step index -> which arguments need a gradient
    owns_cores: bool = False  # a training step may hold BLAS to one thread (parallel.owned_cores)


# A training step holds BLAS to one thread and splits every product on the engine's pool
# (parallel.owned_cores) in graphs with an op whose work the pool splits (POOL_SPLIT_OPS) and none
# whose products rely on BLAS's own threads (BLAS_THREADED_OPS); a dense net's products measured
# faster on BLAS's threads, so graphs of neither keep them too.
# Recurrent layers split the batch across the pool for the whole scan, multi-head attention for the
# attention itself (their sequences never meet).
POOL_SPLIT_OPS = frozenset({"conv1d", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "rnn", "lstm", "gru",
                            "multi_head_attention"})
BLAS_THREADED_OPS = frozenset({"matmul", "scaled_dot_product_attention"})


class Model:
    """A graph ready to run: ``forward``, ``loss_and_grads``, ``predict``, and its weights.

    ``params`` holds the trainable weights (keys ``"<node id>/<weight>"``), ``buffers`` the
    others (running statistics). ``dtype`` is the float type every float tensor is computed in.
    """

    def __init__(self, spec: dict, *, device: str = "cpu", dtype: str = "float32", seed: int = 0):
        if dtype not in FLOAT_DTYPES:
            raise EngineError(f"dtype must be one of {', '.join(FLOAT_DTYPES)}, got {dtype!r}")
        self.analysis: Analysis = analyze(spec)
        self.analysis.raise_for_errors()
        self.spec = spec
        self.device = device
        self.dtype = dtype
        self.xp = backend.get_xp(device)
        self.seed = seed
        self.params: dict = {}
        self.buffers: dict = {}
        init_rng = numpy.random.default_rng(seed)
        for node_id in self.analysis.order:
            node = self.analysis.nodes[node_id]
            for weight in node.weights:
                array = initializers.initialize(
                    weight.init, weight.shape, fan_in=weight.fan_in, fan_out=weight.fan_out,
                    rng=init_rng, dtype=dtype, xp=self.xp,
                )
                if weight.zero_rows:
                    array[list(weight.zero_rows)] = 0
                # C order whatever the initializer gave (the orthogonal one gives Fortran order): the ops'
                # products and the optimizers' one-pass kernels expect it.
                array = self.xp.ascontiguousarray(array)
                (self.params if weight.trainable else self.buffers)[f"{node_id}/{weight.name}"] = array
        self.rng = self._make_rng(seed + 1)

    # -- randomness ---------------------------------------------------------------------------
    def _make_rng(self, seed: int):
        if self.xp is numpy:
            return numpy.random.default_rng(seed)
        return self.xp.random.default_rng(seed)

    def rng_state(self) -> dict | None:
        """The dropout generator's state (JSON-ready) on NumPy, for exact resume."""
        if self.xp is numpy:
            return self.rng.bit_generator.state
        return None

    def set_rng_state(self, state: dict | None) -> None:
        if state is not None and self.xp is numpy:
            self.rng.bit_generator.state = state

    # -- description -----------------------------------------------------------------------
    @property
    def input_types(self):
        return self.analysis.inputs

    @property
    def output_names(self) -> list[str]:
        return list(self.analysis.outputs)

    @property
    def loss_key(self) -> str | None:
        return self.analysis.loss

    def parameter_count(self) -> int:
        return sum(int(p.size) for p in self.params.values())

    # -- compilation ---------------------------------------------------------------------------
    def _plan(self, targets: tuple[str, ...], with_backward: bool) -> _Plan:
        cache = self.__dict__.setdefault("_plans", {})
        plan = cache.get((targets, with_backward))
        if plan is None:
            plan = cache[(targets, with_backward)] = self._compile_plan(targets, with_backward)
        return plan

    def _compile_plan(self, targets: tuple[str, ...], with_backward: bool) -> _Plan:
        analysis = self.analysis
        needed: list[str] = []
        seen: set[str] = set()
        stack = [analysis.producers.get(t) for t in targets]
        while stack:
            node_id = stack.pop()
            if node_id is None or node_id in seen:
                continue
            seen.add(node_id)
            node = analysis.nodes[node_id]
            stack.extend(analysis.producers.get(key) for key in _flat(node.inputs.values()))
        needed = [node_id for node_id in analysis.order if node_id in seen]

        last_use: dict[str, int] = {}
        for index, node_id in enumerate(needed):
            for key in _flat(analysis.nodes[node_id].inputs.values()):
                last_use[key] = index
        steps = []
        for index, node_id in enumerate(needed):
            node = analysis.nodes[node_id]
            args = [node.inputs.get(port.name) for port in node.op.inputs]
            weight_keys = tuple(f"{node_id}/{w.name}" for w in node.weights)
            release = tuple(
                key for key, last in last_use.items()
                if last == index and key not in targets and key not in analysis.inputs
            )
            steps.append(_Step(node, args, weight_keys, release))
        backward = self._plan_backward(steps, targets[0]) if with_backward else None
        used = {k for step in steps for k in _flat(step.node.inputs.values()) if k in analysis.inputs}
        used.update(t for t in targets if t in analysis.inputs)
        backward_needs = {b.ctx_index: b.needs for b in backward} if backward else {}
        names = {step.node.op.name for step in steps}
        owns_cores = bool(names & POOL_SPLIT_OPS) and not names & BLAS_THREADED_OPS
        return _Plan(steps, backward, targets, sorted(used), backward_needs, owns_cores)

    def _plan_backward(self, steps: list[_Step], loss_key: str) -> list[_BackStep]:
        """Reverse sweep over the nodes between trainable weights and the loss."""
        analysis = self.analysis
        trained: set[str] = set()  # value keys that depend on a trainable weight
        for step in steps:
            node = step.node
            depends = any(w.trainable for w in node.weights) or any(
                key in trained for key in _flat(node.inputs.values())
            )
            if depends and node.op.differentiable:
                trained.update(node.output_keys)
        reaches_loss: set[str] = {analysis.producers[loss_key]}
        for step in reversed(steps):
            if step.node.id in reaches_loss:
                reaches_loss.update(analysis.producers[k] for k in _flat(step.node.inputs.values())
                                    if analysis.producers.get(k))
        back = []
        for index in reversed(range(len(steps))):
            step = steps[index]
            node = step.node
            if node.id not in reaches_loss or not any(k in trained for k in node.output_keys):
                continue
            grad_keys, needs = [], []
            for port, arg in zip(node.op.inputs, step.args):
                if arg is None or not port.differentiable:
                    grad_keys.append(None)
                    needs.append(False)
                elif isinstance(arg, list):
                    flags = [key in trained for key in arg]
                    grad_keys.append([key if flag else None for key, flag in zip(arg, flags)])
                    needs.append(flags)
                else:
                    grad_keys.append(arg if arg in trained else None)
                    needs.append(arg in trained)
            weight_grad_keys = tuple(
                f"{node.id}/{w.name}" if w.trainable else None for w in node.weights
            )
            needs.extend(key is not None for key in weight_grad_keys)
            back.append(_BackStep(node, index, grad_keys, weight_grad_keys, tuple(needs)))
        last_step = {key: position for position, step in enumerate(back) for key in step.weight_grad_keys if key}
        for position, step in enumerate(back):
            step.gradients_done = tuple(key for key in step.weight_grad_keys if key and last_step[key] == position)
        return back

    # -- running ------------------------------------------------------------------------------
    def prepare_feeds(self, feeds: dict, keys=None) -> dict:
        """Check and convert the arrays fed to graph inputs (dtype, shape), naming the input."""
        prepared = {}
        xp = self.xp
        wanted = self.analysis.inputs if keys is None else {k: self.analysis.inputs[k] for k in keys}
        for name, declared in wanted.items():
            if name not in feeds:
                raise EngineError(f"missing value for graph input '{name}' "
                                  f"(expected shape {format_shape(declared.shape)})")
            array = feeds[name]
            dtype = self.dtype if declared.dtype in FLOAT_DTYPES else declared.dtype
            if not hasattr(array, "dtype") or array.dtype != dtype or backend.array_module(array) is not xp:
                if hasattr(array, "dtype") and array.dtype.kind == "f" and declared.dtype not in FLOAT_DTYPES:
                    rounded = backend.to_numpy(array)
                    if not numpy.array_equal(rounded, numpy.round(rounded)):
                        raise EngineError(f"graph input '{name}' is {declared.dtype} but was fed non-integer values")
                array = xp.asarray(array, dtype=dtype)
            shape = array.shape
            if len(shape) != len(declared.shape) or any(
                want is not None and want != got for want, got in zip(declared.shape, shape)
            ):
                raise EngineError(
                    f"graph input '{name}' expects shape {format_shape(declared.shape)} but was fed {tuple(shape)}"
                )
            prepared[name] = array
        return prepared

    def _one(self, dtype):
        """The seed of the backward sweep, d loss / d loss, made once per dtype."""
        ones = self.__dict__.setdefault("_ones", {})
        if dtype not in ones:
            ones[dtype] = self.xp.ones((), dtype=dtype)
        return ones[dtype]

    def _needed_inputs(self, targets: tuple[str, ...]) -> list[str]:
        return self._plan(targets, False).input_names

    def _workspaces(self, plan: _Plan) -> list[dict]:
        """Per node of a training plan, the work arrays its op reuses from step to step (see
        ``engine.ops._util.scratch``); one set per thread, so that threads never share them. The
        nodes' dicts share one entry, ``SHARED_WORKSPACE``: scratch arrays whose contents live only
        during one op's call, reused by the next node's op (the plan runs one node at a time)."""
        local = self.__dict__.setdefault("_thread_state", threading.local())
        spaces = local.__dict__.setdefault("workspaces", {})
        key = (plan.targets, plan.backward is not None)
        if key not in spaces:
            shared: dict = {}
            spaces[key] = [{SHARED_WORKSPACE: shared} for _ in plan.steps]
        return spaces[key]

    def run(self, feeds: dict, targets: tuple[str, ...], *, training: bool = False, keep_contexts: bool = False,
            observer=None):
        """Run the forward pass for ``targets`` (value keys); returns (values, contexts).

        With ``keep_contexts`` (a training step) the ops reuse their work arrays across calls, so
        the contexts are valid until the next such run of the same targets in the same thread.
        ``observer(node, output)``, if given, sees each node's output as it is made (layer
        statistics, ``engine.layer_stats``): the only moment every activation still exists."""
        plan = self._plan(tuple(targets), keep_contexts)
        values = self.prepare_feeds(feeds, plan.input_names)
        contexts = []
        params, buffers, rng = self.params, self.buffers, self.rng
        backward_needs = plan.backward_needs
        workspaces = self._workspaces(plan) if keep_contexts else None
        for index, step in enumerate(plan.steps):
            args = [
                None if a is None else [values[k] for k in a] if isinstance(a, list) else values[a]
                for a in step.args
            ]
            for key in step.weight_keys:
                args.append(params[key] if key in params else buffers[key])
            ctx = Context(training, rng, backward_needs.get(index, ()))
            if workspaces is not None:
                ctx.workspace = workspaces[index]
            out = step.node.op.forward(ctx, step.node.params, *args)
            if observer is not None:
                observer(step.node, out)
            if ctx.updates:
                for name, value in ctx.updates.items():
                    buffers[f"{step.node.id}/{name}"] = value
            keys = step.node.output_keys
            if len(keys) == 1:
                values[keys[0]] = out
            else:
                for key, value in zip(keys, out):
                    values[key] = value
            if keep_contexts:
                contexts.append(ctx)
            for key in step.release:
                values.pop(key, None)
        return values, contexts

    def forward(self, feeds: dict, *, outputs=None, training: bool = False) -> dict:
        """Values of the named graph outputs (all by default), as arrays of the model's device."""
        names = self.output_names if outputs is None else list(outputs)
        unknown = [n for n in names if n not in self.analysis.outputs]
        if unknown:
            raise EngineError(f"unknown output(s) {unknown}; the graph's outputs are {self.output_names}")
        targets = tuple(self.analysis.outputs[n] for n in names)
        values, _ = self.run(feeds, targets, training=training)
        return {n: values[self.analysis.outputs[n]] for n in names}

    def loss_and_grads(self, feeds: dict, *, value_keys: tuple = (), training: bool = True, observer=None,
                       on_gradient=None):
        """One forward and backward: (loss as float, {value key: array}, {param key: gradient}).

        ``value_keys`` names extra values to return (node ids, or graph outputs' keys);
        ``observer`` is ``run``'s. ``on_gradient(key, gradient)``, if given, is called as soon as
        backward has finished a parameter's gradient (in ``gradient_order``), so that a
        data-parallel reducer can send it while backward goes on."""
        loss_key = self.loss_key
        targets = (loss_key, *value_keys)
        plan = self._plan(targets, True)
        if self.xp is numpy:
            backend.retain_freed_memory()  # each step's arrays come back from the heap, not as page faults
        if self.xp is numpy and plan.owns_cores:
            with parallel.owned_cores():
                return self._loss_and_grads(plan, feeds, targets, loss_key, value_keys, training, observer,
                                            on_gradient)
        return self._loss_and_grads(plan, feeds, targets, loss_key, value_keys, training, observer, on_gradient)

    def gradient_order(self) -> list[str]:
        """The trainable parameters' keys in the order backward finishes their gradients."""
        return [key for step in self._plan((self.loss_key,), True).backward for key in step.gradients_done]

    def _loss_and_grads(self, plan: _Plan, feeds: dict, targets: tuple, loss_key: str, value_keys: tuple,
                        training: bool, observer=None, on_gradient=None):
        values, contexts = self.run(feeds, targets, training=training, keep_contexts=True, observer=observer)
        loss = values[loss_key]
        grads_of_values = {loss_key: self._one(loss.dtype)}
        param_grads: dict = {}
        for back in plan.backward:
            node = back.node
            keys = node.output_keys
            if len(keys) == 1:
                grad = grads_of_values.pop(keys[0], None)
                if grad is None:
                    continue
            else:
                grad = tuple(grads_of_values.pop(k, None) for k in keys)
                if all(g is None for g in grad):
                    continue
            ctx = contexts[back.ctx_index]
            taken_early = []
            if on_gradient is not None and back.gradients_done:
                def weights_ready(weight_grads, back=back, taken_early=taken_early):
                    taken_early.append(True)
                    _take_weight_gradients(back, weight_grads, param_grads, on_gradient)

                ctx.weights_ready = weights_ready
            results = node.op.backward(ctx, node.params, grad)
            contexts[back.ctx_index] = None  # free what forward kept
            n_inputs = len(back.grad_keys)
            for key, value in zip(back.grad_keys, results[:n_inputs]):
                if key is None:
                    continue
                if isinstance(key, list):
                    for k, v in zip(key, value):
                        if k is not None:
                            _accumulate(grads_of_values, k, v)
                else:
                    _accumulate(grads_of_values, key, value)
            if not taken_early:
                _take_weight_gradients(back, results[n_inputs:], param_grads, on_gradient)
        return float(loss), {key: values[key] for key in value_keys}, param_grads

    def predict(self, feeds: dict, *, outputs=None, batch_size: int = 1024) -> dict:
        """Outputs in eval mode, in batches, as NumPy arrays."""
        names = self.output_names if outputs is None else list(outputs)
        targets = tuple(self.analysis.outputs[n] for n in names)
        needed = self._needed_inputs(targets)
        missing = [n for n in needed if n not in feeds]
        if missing:
            raise EngineError(f"missing value(s) for graph input(s) {missing}")
        total = len(feeds[needed[0]]) if needed else 1
        pieces: dict[str, list] = {n: [] for n in names}
        for start in range(0, total, batch_size):
            chunk = {k: feeds[k][start:start + batch_size] for k in needed}
            result = self.forward(chunk, outputs=names, training=False)
            for n in names:
                pieces[n].append(backend.to_numpy(result[n]))
        return {n: numpy.concatenate(p) if p and p[0].ndim else (p[0] if p else None) for n, p in pieces.items()}

    # -- weights --------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, numpy.ndarray]:
        """Every weight and buffer as NumPy arrays, keyed ``node/weight``."""
        return {k: backend.to_numpy(v) for k, v in {**self.params, **self.buffers}.items()}

    def load_state_arrays(self, arrays: dict, *, source: str = "weights") -> None:
        """Replace weights in place from arrays keyed ``node/weight``; mismatches name the tensor."""
        from engine.errors import ArtifactError  # noqa: PLC0415

        expected = {**self.params, **self.buffers}
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        if missing:
            raise ArtifactError(f"{source}: tensor(s) {missing} missing for this graph")
        if extra:
            raise ArtifactError(f"{source}: tensor(s) {extra} do not belong to this graph")
        for key, target in expected.items():
            array = arrays[key]
            if tuple(array.shape) != tuple(target.shape):
                raise ArtifactError(
                    f"{source}: tensor '{key}' has shape {tuple(array.shape)}, the graph expects {tuple(target.shape)}"
                )
            target[...] = self.xp.asarray(array, dtype=target.dtype)


def _take_weight_gradients(back, weight_grads, param_grads: dict, on_gradient) -> None:
    """A backward step's weight gradients into ``param_grads``; ``on_gradient`` then gets those this
    step finishes (``gradients_done``)."""
    for key, value in zip(back.weight_grad_keys, weight_grads):
        if key is not None:
            _accumulate(param_grads, key, value)
    if on_gradient is not None:
        for key in back.gradients_done:
            if key in param_grads:
                on_gradient(key, param_grads[key])


def _accumulate(store: dict, key: str, value) -> None:
    current = store.get(key)
    if current is None:
        store[key] = value
    elif current.shape != value.shape or current.ndim == 0 or backend.array_module(current) is not numpy:
        store[key] = current + value
    else:  # a value used twice (a residual's shortcut): the sum split across the engine's threads
        total = numpy.empty(current.shape, dtype=numpy.result_type(current, value))
        rows = [a.reshape(len(a), -1) for a in (total, current, value)]
        parallel.for_rows(numpy, len(total), rows[0].shape[1],
                          lambda low, high: numpy.add(rows[1][low:high], rows[2][low:high], out=rows[0][low:high]))
        store[key] = total


def _flat(values) -> list:
    keys = []
    for value in values:
        if value is None:
            continue
        keys.extend(value if isinstance(value, list) else [value])
    return keys


def compile(spec: dict, **options) -> Model:  # the natural name
    """Validate a graph document and compile it into a ``Model``."""
    return Model(spec, **options)


__all__ = ["Model", "compile"]
