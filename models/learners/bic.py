"""BiC (Wu et al. 2019, "Large scale incremental learning") as in PyCIL / the paper's code.

Task t >= 1:
  split      10 % validation held out of (new data ∪ memory): int(0.1·memory/known) samples per
             class, the same count for new classes (Scenario.bic_split, class-balanced).
  stage 1    on the rest:  L = (1 - λ)·CE(z, y) + λ·KD_T(z[:, :known], z_old),
             λ = known / seen, T = 2; the bias layers of earlier tasks are applied and fixed.
  stage 2    one bias layer for the newest classes, z[:, new] ← α·z[:, new] + β (α = 1, β = 0
             initially, float), trained alone with CE on the bias-corrected logits of the
             validation split, the network in eval mode; same epochs, lr, schedule and weight
             decay as stage 1 (as the paper's code).
Task 0 is plain CE (no old classes, no bias layer).

Differences from the paper's code, both named options:
  stage2_loss = "ce" (default) | "softmax_ce": the paper's code (PyCIL) computes
      cross_entropy(softmax(z), y), a softmax applied twice; "softmax_ce" reproduces it.
  The paper's code leaves the network in train mode during stage 2 (BatchNorm statistics keep
  moving on the validation data); we evaluate the network in eval mode there, and compute the
  validation logits once per task (stage 2 never changes the network).
"""
from __future__ import annotations

import numpy as np

from intsim.nn.losses import cross_entropy, kd_loss, softmax
from intsim.nn import Module
from intsim.nn.training import run_epoch

from intsim.core.checks import FRACTION, POSITIVE, Rule
from intsim.models.learners.base import Callbacks, Learner, Option, new_batch_stats, diverged_at


class BiasLayer(Module):
    """z[:, lo:hi] ← α·z[:, lo:hi] + β, the other columns unchanged; α, β scalars (float)."""

    def __init__(self, lo: int, hi: int, **kw):
        super().__init__(**kw)
        self.lo, self.hi = lo, hi
        self._add_param("alpha", np.ones(1, np.float32))
        self._add_param("beta", np.zeros(1, np.float32))

    def forward(self, z):
        lo, hi = self.lo, self.hi
        out = np.array(z, copy=True)
        out[:, lo:hi] = self.params["alpha"] * z[:, lo:hi] + self.params["beta"]
        self._cache = {"z": z[:, lo:hi]}
        return out

    def backward(self, g):
        lo, hi = self.lo, self.hi
        if self.requires_grad:
            self.grads["alpha"] += np.sum(g[:, lo:hi] * self._cache["z"], dtype=np.float64)
            self.grads["beta"] += np.sum(g[:, lo:hi], dtype=np.float64)
        dz = np.array(g, copy=True)
        dz[:, lo:hi] *= self.params["alpha"]
        return dz

    def extra_repr(self):
        return f"classes [{self.lo}, {self.hi})"


class BiCNet(Module):
    """IncrementalNet followed by one BiasLayer per task t >= 1 (children bias1, bias2, …)."""

    def __init__(self, net: Module, **kw):
        super().__init__(**kw)
        self.net = net
        self.n_bias = 0

    def bias_layers(self) -> list[BiasLayer]:
        return [getattr(self, f"bias{i}") for i in range(1, self.n_bias + 1)]

    def add_bias_layer(self, t: int, lo: int, hi: int) -> BiasLayer:
        layer = BiasLayer(lo, hi)
        setattr(self, f"bias{t}", layer)
        self.n_bias = t
        return layer

    def grow(self, n_new: int) -> None:
        self.net.grow(n_new)

    def features(self, x):
        return self.net.features(x)

    def correct(self, z, layers=None):
        """Apply the bias layers (default: all) to raw logits z."""
        for layer in (self.bias_layers() if layers is None else layers):
            z = layer.forward(z)
        return z

    def forward(self, x):
        return self.correct(self.net.forward(x))

    def backward(self, g):
        for layer in reversed(self.bias_layers()):
            g = layer.backward(g)
        return self.net.backward(g)


class BiC(Learner):
    name = "bic"
    uses_memory = True
    uses_teacher = True
    OPTIONS = {"T": Option(2.0, POSITIVE), "val_fraction": Option(0.1, FRACTION),
               "stage2_loss": Option("ce", Rule("str", choices=("ce", "softmax_ce")))}

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.val = None

    def build_model(self):
        return BiCNet(super().build_model(), numerics=self.numerics)

    def expand(self, t):
        self.model.grow(self.scenario.task_sizes[t])
        if t > 0:
            self.model.add_bias_layer(t, self.scenario.task_start(t), self.scenario.task_stop(t))
        for layer in self.model.bias_layers():
            layer.freeze()                       # stage 1 keeps every bias layer fixed

    def training_set(self, t):
        if t == 0:
            self.val = None
            return self.scenario.train_task(t)
        Xm, ym = self.memory.data() if len(self.memory) else (None, None)
        X, y, Xv, yv = self.scenario.bic_split(t, Xm, ym, self.options["val_fraction"])
        self.val = (Xv, yv)
        return X, y

    def step_loss(self, x, y):
        logits = self.model.forward(x)
        loss, grad = cross_entropy(logits, y)
        terms = {"ce": float(loss)}
        if self.teacher is not None:
            k, lam = self.known, self.known / self.seen
            kd, g_kd = kd_loss(logits[:, :k], self.teacher.forward(x), self.options["T"])
            terms["kd"] = float(kd)
            loss = (1 - lam) * loss + lam * kd
            grad *= 1 - lam
            grad[:, :k] += lam * g_kd
        self.note_batch(logits, y, **terms)
        self.model.backward(grad)
        return loss

    def after_training(self, t, callbacks: Callbacks):
        if t == 0 or self.val is None or len(self.val[1]) == 0:
            return
        self.bias_correction(t, *self.val, callbacks)

    def bias_correction(self, t, Xv, yv, cb: Callbacks):
        """Stage 2: train the newest bias layer on the validation split."""
        s = self.train_settings
        layers = self.model.bias_layers()
        newest = layers[-1]
        newest.unfreeze()
        self.model.eval()
        raw = self._batched(self.model.net.forward, Xv)        # network logits, eval mode
        self.model.net.clear_cache()
        z_in = self.model.correct(raw, layers[:-1])            # older bias layers, fixed
        opt, sched = self.make_optimizer(newest)
        rng = np.random.default_rng(self.scenario.seed_for(f"bic_stage2/task{t}"))
        cb.stage(self, t, "bias_correction", s.epochs)

        def step_fn(z_batch, y_batch):
            z = newest.forward(z_batch)
            if self.options["stage2_loss"] == "softmax_ce":
                p = softmax(z)
                loss, g_p = cross_entropy(p, y_batch)
                g = p * (g_p - np.sum(g_p * p, axis=1, keepdims=True))
            else:
                loss, g = cross_entropy(z, y_batch)
            newest.backward(g)
            return loss
        for epoch in range(s.epochs):          # not traced, no global steps: no step hooks
            lr, self._batch_stats = opt.lr, new_batch_stats()
            with diverged_at(t, "bias_correction", epoch):
                losses, _ = run_epoch(step_fn, z_in, yv, self.batches(len(yv), rng), opt)
            sched.step()
            self.end_epoch_stats(lr)
            cb.epoch_end(self, t, epoch, float(np.mean(losses)) if losses else float("nan"))
        newest.freeze()

    def bias_params(self) -> list[tuple[float, float]]:
        return [(float(b.params["alpha"][0]), float(b.params["beta"][0]))
                for b in self.model.bias_layers()]
