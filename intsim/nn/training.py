"""The one training loop: SGD steps over shuffled mini-batches, with hooks.

    loss = loss_step(model, x, y)                 forward, loss, backward (gradients accumulate)
    loss = sgd_step(optimizer, step_fn, x, y)     zero_grad; step_fn(x, y); optimizer.step()
    losses, step = run_epoch(step_fn, X, y, batches, optimizer, step, hooks)
    history = fit(model, X, y, epochs=10, ...)     the notebook level: SGD, history, trace
    evaluate(model, X, y)                          accuracy and loss in eval mode

Divergence: sgd_step raises Diverged (with run_epoch's step counter filled in) when the loss is
NaN or infinite, when a quantizer meets NaN or Inf inside the step (an integer datapath cannot
represent them), or when a parameter holds NaN or Inf after the update — so a diverged model
never goes on to produce normal-looking numbers (before: every prediction class 0, exit 0).

Every trainer of the project — the CIL learners, the golden-vector writer, the overflow
report's training runs, the benchmarks — is built from these three, so a training step means
the same sequence of operations everywhere (and so the same bits). `step_fn(x, y) -> loss`
does the forward and backward pass of one mini-batch (a method's loss with distillation terms,
or loss_step for plain cross-entropy); the loop owns zeroing the gradients, the optimizer step,
the global step counter and the hooks.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Iterator, Optional

import numpy as np

from intsim.core.quantizer import NonFiniteError
from intsim.nn.losses import cross_entropy
from intsim.nn.module import Module
from intsim.nn.optim import SGD

StepFn = Callable[[np.ndarray, np.ndarray], float]
LossFn = Callable[[np.ndarray, np.ndarray], tuple]


class Diverged(ArithmeticError):
    """Training diverged (module docstring). `reason` says what was non-finite; `step` (the
    global optimizer step), `task`, `epoch` and `stage` are filled in by the loops above as
    the exception passes (None where unknown)."""

    def __init__(self, reason: str, step: Optional[int] = None):
        super().__init__(reason)
        self.reason, self.step = reason, step
        self.task: Optional[int] = None
        self.epoch: Optional[int] = None
        self.stage: Optional[str] = None

    def where(self) -> dict:
        """{"task", "stage", "epoch", "step", "reason"} (JSON-ready)."""
        return {"task": self.task, "stage": self.stage, "epoch": self.epoch, "step": self.step,
                "reason": self.reason}

    def __str__(self) -> str:
        at = ", ".join(f"{k} {v}" for k, v in (("task", self.task), ("stage", self.stage),
                                               ("epoch", self.epoch), ("step", self.step))
                       if v is not None)
        return f"training diverged{' at ' + at if at else ''}: {self.reason}"


def nonfinite_parameter(optimizer: SGD) -> Optional[str]:
    """The name of the first trainable parameter holding NaN or Inf, else None."""
    for name, p, _ in optimizer.named_parameters():
        if p.size and not (math.isfinite(float(p.min())) and math.isfinite(float(p.max()))):
            return name
    return None


class TrainHooks:
    """Called by run_epoch around every optimizer step (all optional no-ops)."""

    def step_start(self, step: int) -> None:
        """Before step `step` (global counter): e.g. attach a trace."""

    def step_end(self, step: int, loss: float) -> None:
        """After the optimizer step."""


def loss_step(model: Module, x: np.ndarray, y: np.ndarray, loss_fn: LossFn = cross_entropy,
              on_loss: Optional[Callable] = None) -> float:
    """logits = model.forward(x); (loss, dL/dlogits) = loss_fn(logits, y); model.backward.

    on_loss(logits, grad, loss), when given, runs between the loss and the backward pass."""
    logits = model.forward(x)
    loss, grad = loss_fn(logits, y)
    if on_loss is not None:
        on_loss(logits, grad, loss)
    model.backward(grad)
    return float(loss)


def sgd_step(optimizer: SGD, step_fn: StepFn, x: np.ndarray, y: np.ndarray) -> float:
    """One optimizer step on one mini-batch: zero_grad, step_fn (forward and backward), step.
    Raises Diverged on a non-finite loss, quantizer input or parameter (module docstring)."""
    optimizer.zero_grad()
    try:
        loss = step_fn(x, y)
    except NonFiniteError as e:
        raise Diverged(f"a quantized operand holds NaN or Inf ({e})") from None
    if not math.isfinite(float(loss)):
        raise Diverged(f"the loss is {float(loss)}")
    optimizer.step()
    bad = nonfinite_parameter(optimizer)
    if bad is not None:
        raise Diverged(f"parameter {bad} holds NaN or Inf after the update")
    return loss


def epoch_batch_sizes(n: int, batch_size: int, min_size: int = 1) -> list[int]:
    """Sizes of the batches of one epoch of n samples: batch_size each, the last one n mod
    batch_size; a trailing batch smaller than min_size is dropped (epoch_batches)."""
    sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
    return [b for b in sizes if b >= min_size]


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator,
                  min_size: int = 1) -> Iterator[np.ndarray]:
    """Index arrays of one epoch: one permutation of n drawn from rng, cut into batches of
    batch_size; a trailing batch smaller than min_size is dropped."""
    perm = rng.permutation(n)
    for i, size in enumerate(epoch_batch_sizes(n, batch_size, min_size)):
        yield perm[i * batch_size:i * batch_size + size]


def run_epoch(step_fn: StepFn, X: np.ndarray, y: np.ndarray, batches, optimizer: SGD,
              step: int = 0, hooks: Optional[TrainHooks] = None,
              transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
              max_steps: Optional[int] = None) -> tuple[list[float], int]:
    """sgd_step on X[idx], y[idx] for every idx of `batches` (transform(X[idx]) when given,
    e.g. augmentation); hooks around each step. Stops early once the global step counter
    reaches max_steps. Returns (losses, the step counter after the epoch)."""
    hooks = hooks or TrainHooks()
    losses = []
    for idx in batches:
        if max_steps is not None and step >= max_steps:
            break
        xb = X[idx]
        if transform is not None:
            xb = transform(xb)
        hooks.step_start(step)
        try:
            loss = sgd_step(optimizer, step_fn, xb, y[idx])
        except Diverged as e:
            e.step = step
            raise
        hooks.step_end(step, loss)
        step += 1
        losses.append(loss)
    return losses, step


# ------------------------------------------------------------------------ notebook level
class FitCallback:
    """What fit() reports (all optional): override what you need, e.g. to log or plot."""

    def step_end(self, step: int, loss: float) -> None:
        """After optimizer step `step`."""

    def epoch_end(self, record: dict) -> None:
        """After an epoch: one row of the History (see fit)."""


class History(list):
    """fit()'s per-epoch records (dicts); .to_frame() gives a pandas DataFrame."""

    def to_frame(self):
        import pandas as pd                     # heavy: loaded when a frame is asked for
        return pd.DataFrame(list(self))


#: fit()'s training batch and, so that a quantized model is scored on batches like those it
#: was trained on, evaluate()'s default evaluation batch (dynamic activation scales make
#: quantized outputs depend on the batch; intsim cil's eval_batch_size defaults the same way)
DEFAULT_BATCH = 128


def predict_logits(model: Module, X: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """model.forward over X in eval mode, batch_size rows at a time (the mode is restored)."""
    was = model.training
    model.eval()
    try:
        outs = [model.forward(X[s:s + batch_size]) for s in range(0, len(X), batch_size)]
    finally:
        model.train(was)
        model.clear_cache()
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def evaluate(model: Module, X: np.ndarray, y: np.ndarray, batch_size: int = DEFAULT_BATCH,
             loss_fn: LossFn = cross_entropy) -> dict:
    """{"accuracy": % of argmax(logits) == y, "loss": mean loss} in eval mode.

    With dynamic per-tensor activation scales a quantized model's outputs depend on how X is
    batched: the default is fit()'s training batch (DEFAULT_BATCH); pass the batch size the
    deployment uses."""
    logits = predict_logits(model, X, batch_size)
    loss, _ = loss_fn(logits, y)
    return {"accuracy": 100.0 * float(np.mean(np.argmax(logits, axis=1) == y)) if len(y)
            else float("nan"), "loss": float(loss)}


class _FitHooks(TrainHooks):
    """Attaches `trace` every trace_every-th step (stamped with the step), forwards steps."""

    def __init__(self, model: Module, trace, trace_every: int, callbacks):
        self.model, self.trace, self.every, self.callbacks = model, trace, trace_every, callbacks

    def step_start(self, step: int) -> None:
        if self.trace is not None and step % self.every == 0:
            self.trace.advance(step)
            self.model.set_trace(self.trace)

    def step_end(self, step: int, loss: float) -> None:
        if self.trace is not None:
            self.model.set_trace(None)
        for cb in self.callbacks:
            cb.step_end(step, loss)


def fit(model: Module, X: np.ndarray, y: np.ndarray, *, epochs: int = 10,
        batch_size: int = DEFAULT_BATCH, lr: float = 0.01, momentum: float = 0.9,
        weight_decay: float = 0.0, seed: int = 0, loss_fn: LossFn = cross_entropy,
        optimizer: Optional[SGD] = None, trace=None, trace_every: int = 1,
        validation: Optional[tuple] = None, eval_batch_size: Optional[int] = None,
        callbacks=()) -> History:
    """Train `model` on (X, y) with SGD through the one training loop; returns a History.

    Each epoch draws one permutation from default_rng(seed) (one generator for the whole fit)
    and runs sgd_step on batches of batch_size (a trailing batch of one sample is dropped:
    BatchNorm needs two). With a Trace, every trace_every-th step is traced and stamped with
    the global step (evaluation passes are not traced). History rows: epoch, steps, loss
    (mean over the epoch's batches), train_accuracy (% over the batches, in training mode),
    lr, seconds, events (saturation/wrap events traced in the epoch), and val_accuracy /
    val_loss when `validation` = (X_val, y_val) is given.
    """
    if epochs < 0 or batch_size < 1 or trace_every < 1:
        raise ValueError("epochs >= 0, batch_size >= 1 and trace_every >= 1 are required, got "
                         f"epochs={epochs}, batch_size={batch_size}, trace_every={trace_every}")
    opt = optimizer or SGD(model, lr=lr, momentum=momentum, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    hooks = _FitHooks(model, trace, trace_every, callbacks)
    history, step = History(), 0
    correct = []

    def step_fn(xb, yb):
        def count(logits, grad, loss):
            correct.append((int(np.sum(np.argmax(logits, axis=1) == yb)), len(yb)))
        return loss_step(model, xb, yb, loss_fn, on_loss=count)
    for epoch in range(epochs):
        t0, n_records, correct[:] = time.perf_counter(), len(trace) if trace is not None else 0, []
        model.train()
        losses, step = run_epoch(step_fn, X, y, epoch_batches(len(y), batch_size, rng, 2), opt,
                                 step, hooks)
        model.clear_cache()
        hits, seen = (sum(c) for c in zip(*correct)) if correct else (0, 0)
        rec = {"epoch": epoch, "steps": step, "loss": float(np.mean(losses)) if losses
               else float("nan"), "train_accuracy": 100.0 * hits / seen if seen
               else float("nan"), "lr": opt.lr, "seconds": time.perf_counter() - t0,
               "events": sum(r.get("events", 0) for r in trace.records[n_records:])
               if trace is not None else None}
        if validation is not None:
            v = evaluate(model, *validation, batch_size=eval_batch_size or batch_size,
                         loss_fn=loss_fn)
            rec.update(val_accuracy=v["accuracy"], val_loss=v["loss"])
        history.append(rec)
        for cb in callbacks:
            cb.epoch_end(rec)
    return history
