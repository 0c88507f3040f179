"""The one training loop: SGD steps over shuffled mini-batches, with hooks.

    loss = loss_step(model, x, y)                 forward, loss, backward (gradients accumulate)
    loss = sgd_step(optimizer, step_fn, x, y)     zero_grad; step_fn(x, y); optimizer.step()
    losses, step = run_epoch(step_fn, X, y, batches, optimizer, step, hooks)

Every trainer of the project — the CIL learners, the golden-vector writer, the overflow
report's training runs, the benchmarks — is built from these three, so a training step means
the same sequence of operations everywhere (and so the same bits). `step_fn(x, y) -> loss`
does the forward and backward pass of one mini-batch (a method's loss with distillation terms,
or loss_step for plain cross-entropy); the loop owns zeroing the gradients, the optimizer step,
the global step counter and the hooks.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import numpy as np

from intsim.nn.losses import cross_entropy
from intsim.nn.module import Module
from intsim.nn.optim import SGD

StepFn = Callable[[np.ndarray, np.ndarray], float]
LossFn = Callable[[np.ndarray, np.ndarray], tuple]


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
    """One optimizer step on one mini-batch: zero_grad, step_fn (forward and backward), step."""
    optimizer.zero_grad()
    loss = step_fn(x, y)
    optimizer.step()
    return loss


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator,
                  min_size: int = 1) -> Iterator[np.ndarray]:
    """Index arrays of one epoch: one permutation of n drawn from rng, cut into batches of
    batch_size; a trailing batch smaller than min_size is dropped."""
    perm = rng.permutation(n)
    for s in range(0, n, batch_size):
        idx = perm[s:s + batch_size]
        if len(idx) >= min_size:
            yield idx


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
        loss = sgd_step(optimizer, step_fn, xb, y[idx])
        hooks.step_end(step, loss)
        step += 1
        losses.append(loss)
    return losses, step
