"""Finetune: cross-entropy over all seen classes on the new data only, no memory (lower bound).

    L = CE(z, y),   z = logits of every class seen so far
"""
from __future__ import annotations

from intsim.nn.losses import cross_entropy

from intsim.models.learners.base import Learner


class Finetune(Learner):
    name = "finetune"
    uses_memory = False

    def step_loss(self, x, y):
        logits = self.model.forward(x)
        loss, grad = cross_entropy(logits, y)
        self.note_batch(logits, y, ce=loss)
        self.model.backward(grad)
        return loss
