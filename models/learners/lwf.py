"""LwF (Li & Hoiem 2016) as in PyCIL / the paper's code; no memory.

    L = CE(z[:, known:], y - known) + λ · KD_T(z[:, :known], z_old)        λ = 3, T = 2
The cross-entropy covers the new classes only; the old logits are only distilled from the
teacher (the model after the previous task, frozen, same numerics). Prediction: argmax over all
seen classes.
"""
from __future__ import annotations

import numpy as np

from intsim.nn.losses import cross_entropy, kd_loss

from intsim.core.checks import NONNEGATIVE, POSITIVE
from intsim.models.learners.base import Learner, Option


class LwF(Learner):
    name = "lwf"
    uses_memory = False
    uses_teacher = True
    OPTIONS = {"T": Option(2.0, POSITIVE), "lambda": Option(3.0, NONNEGATIVE)}

    def step_loss(self, x, y):
        logits = self.model.forward(x)
        k = self.known
        grad = np.zeros_like(logits)
        loss, grad[:, k:] = cross_entropy(logits[:, k:], y - k)
        terms = {"ce": float(loss)}
        if self.teacher is not None:
            kd, g_kd = kd_loss(logits[:, :k], self.teacher.forward(x), self.options["T"])
            terms["kd"] = float(kd)
            loss += self.options["lambda"] * kd
            grad[:, :k] = self.options["lambda"] * g_kd
        self.note_batch(logits, y, **terms)
        self.model.backward(grad)
        return loss
