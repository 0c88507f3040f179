"""iCaRL (Rebuffi et al. 2017) as in PyCIL / the paper's code.

loss = "ce_kd" (default):
    L = CE(z, y) + KD_T(z[:, :known], z_old)          T = 2, weight 1, no T² factor
    KD_T(z, z_old) = -(1/B) Σ_b Σ_c softmax(z_old/T)_bc · log_softmax(z/T)_bc
loss = "bce" (the original paper's sigmoid loss):
    targets = onehot(y) over the seen classes, with the old columns replaced by the teacher's
    sigmoid(z_old);  L = (1/B) Σ_b Σ_c BCE(z_bc, target_bc)
z = student logits of every seen class, z_old = teacher logits (old classes), teacher = the
model after the previous task, frozen, same numerics.

Classifiers: "cnn" (argmax z) and "nme" (nearest mean of exemplars on L2-normalised features,
computed in float64 — models/exemplars.py).
"""
from __future__ import annotations

import numpy as np

from intsim.nn.losses import bce_with_logits, cross_entropy, kd_loss

from intsim.core.checks import POSITIVE, Rule
from intsim.models.learners.base import Learner, Option


class ICaRL(Learner):
    name = "icarl"
    uses_memory = True
    has_nme = True
    uses_teacher = True
    OPTIONS = {"loss": Option("ce_kd", Rule("str", choices=("ce_kd", "bce"))),
               "T": Option(2.0, POSITIVE)}

    def step_loss(self, x, y):
        logits = self.model.forward(x)
        old = self.teacher.forward(x) if self.teacher is not None else None
        k = self.known
        if self.options["loss"] == "bce":
            targets = np.eye(logits.shape[1], dtype=logits.dtype)[y]
            if old is not None:
                targets[:, :k] = 1.0 / (1.0 + np.exp(-old.astype(np.float64)))
            loss, grad = bce_with_logits(logits, targets, reduction="batch")
            self.note_batch(logits, y, bce=loss)
        else:
            loss, grad = cross_entropy(logits, y)
            terms = {"ce": float(loss)}
            if old is not None:
                kd, g_kd = kd_loss(logits[:, :k], old, self.options["T"])
                terms["kd"] = float(kd)
                loss += kd
                grad[:, :k] += g_kd
            self.note_batch(logits, y, **terms)
        self.model.backward(grad)
        return loss
