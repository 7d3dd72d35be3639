"""Full-batch second-order refinement of a chain's banks (L-BFGS).

A gray-box chain has a few dozen parameters per range, so its optimum should be *reached*, not
approached by noisy first-order steps. After a stochastic warm-up (Adam on random segments),
the fitter minimises the deterministic training loss — ESR plus pre-emphasised ESR over fixed
segments tiling the training audio (:func:`lactose_audio.sampling.full_batch`) — with
L-BFGS-B (``scipy.optimize``, float64 on the raw bank values, gradients from TensorFlow).

Separated updates hold here too: the gradient of a gathered row comes only from the samples
whose key selected it, so with hard edges each range's rows are refined on that range's data
only; rows that no segment selected have zero gradient and do not move.

The optimiser can be stopped between iterations (a wall-clock deadline, a step budget, Ctrl-C
through the caller's callback): the best point evaluated so far is kept, never a worse one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Raw (pre-sigmoid) values are kept within +-RAW_BOUND: sigmoid(15) = 1 - 3e-7, beyond which
#: a parameter sits on its declared bound and its gradient vanishes anyway.
RAW_BOUND = 15.0


class _Stop(Exception):
    """Raised inside the objective to end the optimiser between evaluations."""


@dataclass
class RefineResult:
    """What one refinement did.

    Attributes:
        loss: best training loss reached (ESR + pre-emphasis ESR over the full batch).
        start_loss: the loss at the starting point.
        iterations: L-BFGS iterations completed.
        evaluations: loss-and-gradient evaluations.
        converged: the optimiser met its tolerance (the optimum of this start is reached).
        line_search_failed: the line search found no decrease (float32 noise floor, or a
            kink); a restart from the best point may still gain.
        stopped: ``should_stop`` ended the run (a deadline or budget, not convergence).
    """

    loss: float
    start_loss: float
    iterations: int
    evaluations: int
    converged: bool
    line_search_failed: bool = False
    stopped: bool = False


def value_and_gradient(chain: Any, batch: Any, sample_rate: int, context: int) -> Any:
    """The traced loss-and-gradient function of ``chain`` for batches laid out like ``batch``.

    ``fn(dry, wet, flat_selections) -> (loss, flat_gradient)``: the loss is ESR plus
    pre-emphasised ESR of the chain's output after ``context`` samples; ``flat_selections``
    are the arrays of the keyed stages' selections, in stage order. The batch dimension is
    left open, so one trace serves the whole fit: every full batch (a search finalist's larger
    batch, the ranges phase's selections). Tracing costs 2-4 s on a 2-core CPU (its graph is
    instantiated without grappler's rewrites, see :func:`_instantiated_without_rewrites`), an
    evaluation tens to hundreds of ms. (Validation renders with the numpy backend instead:
    :func:`lactose_audio.piece_loss.validation_sums`.)
    """
    from lactose_audio._tf import tf
    from lactose_audio.losses import DEFAULT_PRE_EMPHASIS, esr_tf
    from lactose_audio.ranges import UNKEYED
    from lactose_audio.sampling import flat_selections

    variables = list(chain.trainable_variables)
    layout = [None if s is UNKEYED else (type(s), len(s)) for s in batch.selections]
    flat = flat_selections(batch.selections)
    signature = [
        tf.TensorSpec([None, batch.dry.shape[1]], tf.float32),
        tf.TensorSpec([None, batch.wet.shape[1]], tf.float32),
        [tf.TensorSpec([None, *np.shape(a)[1:]], tf.as_dtype(np.asarray(a).dtype)) for a in flat],
    ]

    def selections(arrays):
        out, at = [], 0
        for entry in layout:
            if entry is None:
                out.append(UNKEYED)
            else:
                kind, n = entry
                out.append(kind(*arrays[at : at + n]))
                at += n
        return out

    @tf.function(input_signature=signature, autograph=False)
    def fn(dry, wet, arrays):
        with tf.GradientTape() as tape:
            prediction = chain.forward(dry, selections(arrays), sample_rate)[:, context:]
            loss = esr_tf(wet, prediction) + esr_tf(wet, prediction, DEFAULT_PRE_EMPHASIS)
        grads = tape.gradient(loss, variables)
        grads = [
            tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
            for g, v in zip(grads, variables, strict=True)
        ]
        return loss, tf.concat([tf.reshape(g, [-1]) for g in grads], 0)

    return _instantiated_without_rewrites(fn)


def _instantiated_without_rewrites(fn: Any) -> Any:
    """``fn`` (a ``tf.function`` with one input signature), its graph instantiated on the first
    call with grappler's rewrite passes off.

    TensorFlow optimises a function's graph once, when it first runs it. For the chains'
    loss-and-gradient graphs the rewrites cost 0.5-0.9 s of each fit's 2-4 s trace (13 traces
    in a 120 s search) and the evaluations ran no faster with them (0.54 s per full-batch
    evaluation of a keyed 10-stage chain either way). They stay on for the other graphs (the
    Adam step of an MLP bank ran 4-8 % slower without them). The switch is TensorFlow's
    process-wide option, set only for the duration of that first call.
    """
    from lactose_audio._tf import tf

    state = {"first": True}

    def call(*args: Any) -> Any:
        if not state["first"]:
            return fn(*args)
        options = tf.config.optimizer.get_experimental_options()
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        try:
            out = fn(*args)
        finally:
            tf.config.optimizer.set_experimental_options(
                {"disable_meta_optimizer": bool(options.get("disable_meta_optimizer", False))}
            )
        state["first"] = False
        return out

    return call


class Objective:
    """The full-batch loss of a chain as a function of its flattened raw bank values.

    Args:
        chain: the chain whose ``trainable_variables`` are optimised (assigned in place).
        batch: a :class:`~lactose_audio.sampling.Batch` (fixed segments).
        sample_rate: Hz.
        context: warm-up samples at the start of each segment (not in the loss).
        fn: a :func:`value_and_gradient` of this chain for batches of this layout (traced
            once per fit and shared by its objectives); default: traced for this one.
    """

    def __init__(
        self, chain: Any, batch: Any, sample_rate: int, context: int, fn: Any = None
    ) -> None:
        from lactose_audio._tf import tf
        from lactose_audio.sampling import flat_selections

        self.tf = tf
        self.chain = chain
        self.batch = batch
        self.context = context
        self.sample_rate = sample_rate
        self.variables = list(chain.trainable_variables)
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self._fn = fn if fn is not None else value_and_gradient(chain, batch, sample_rate, context)
        self._args = (
            tf.constant(batch.dry),
            tf.constant(batch.wet),
            [tf.constant(a) for a in flat_selections(batch.selections)],
        )
        self.evaluations = 0

    def get(self) -> np.ndarray:
        """The current raw values, flattened, float64."""
        return np.concatenate([v.numpy().reshape(-1) for v in self.variables]).astype(np.float64)

    def set(self, x: np.ndarray) -> None:
        """Assign flattened raw values to the chain's banks."""
        offset = 0
        for v, shape, size in zip(self.variables, self.shapes, self.sizes, strict=True):
            v.assign(np.asarray(x[offset : offset + size], np.float32).reshape(shape))
            offset += size

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(loss, gradient)`` at ``x`` (assigns ``x`` to the banks)."""
        self.set(x)
        loss, grad = self._fn(*self._args)
        self.evaluations += 1
        return float(loss), grad.numpy().astype(np.float64)


def lbfgs(
    objective: Objective,
    max_iterations: int,
    should_stop: Callable[[], bool] | None = None,
    on_iteration: Callable[[float], None] | None = None,
) -> RefineResult:
    """Minimise ``objective`` from the chain's current values with L-BFGS-B.

    Args:
        objective: an :class:`Objective`; the chain holds the best point on return.
        max_iterations: upper bound on L-BFGS iterations.
        should_stop: polled before every evaluation; True ends the run (deadline, budget).
        on_iteration: called after each iteration with the current loss (the caller counts
            steps, validates, checkpoints; it may raise KeyboardInterrupt).

    Returns:
        :class:`RefineResult`. A non-finite loss ends the run at the best finite point.
    """
    from scipy.optimize import minimize

    x0 = np.clip(objective.get(), -RAW_BOUND, RAW_BOUND)
    best = {"loss": math.inf, "x": x0.copy()}
    state = {"iterations": 0, "last": math.inf, "stopped": False}
    evaluations0 = objective.evaluations

    def fun(x):
        if should_stop is not None and should_stop():
            state["stopped"] = True
            raise _Stop
        loss, grad = objective(x)
        if not (math.isfinite(loss) and np.all(np.isfinite(grad))):
            raise _Stop
        if loss < best["loss"]:
            best["loss"], best["x"] = loss, x.copy()
        state["last"] = loss
        return loss, grad

    def callback(intermediate_result=None):
        state["iterations"] += 1
        objective.set(best["x"])  # the accepted iterate is the best point evaluated
        if on_iteration is not None:
            on_iteration(best["loss"])

    start_loss, _ = objective(x0)
    best["loss"] = start_loss if math.isfinite(start_loss) else math.inf
    status = -1
    try:
        if max_iterations > 0:
            result = minimize(
                fun,
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=[(-RAW_BOUND, RAW_BOUND)] * x0.size,
                callback=callback,
                options={
                    "maxiter": int(max_iterations),
                    "maxcor": 20,
                    "ftol": 1e-10,
                    "gtol": 1e-9,
                    "maxls": 30,
                },
            )
            status = int(result.status)
    except _Stop:
        status = -1
    finally:
        objective.set(best["x"])
    return RefineResult(
        loss=float(best["loss"]),
        start_loss=float(start_loss),
        iterations=state["iterations"],
        evaluations=objective.evaluations - evaluations0,
        converged=status == 0,
        line_search_failed=status == 2,
        stopped=bool(state["stopped"]),
    )
