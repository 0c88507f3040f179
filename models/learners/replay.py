"""Replay: finetune on the new data plus the herded exemplars of the old classes.

    L = CE(z, y)  over (new data ∪ memory), z = logits of every class seen so far
"""
from __future__ import annotations

from intsim.models.learners.finetune import Finetune


class Replay(Finetune):
    """Finetune's loss; the base class adds the exemplar memory to the training set."""
    name = "replay"
    uses_memory = True
