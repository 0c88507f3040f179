"""Class-incremental learners (README, "Methods and their losses"): one module per method,
common loop in base.py.

    learner = make_learner("icarl", scenario, backbone_fn, preset("hdqt"), TrainSettings(...))
    for t in range(scenario.n_tasks):
        learner.learn_task(t)
        preds = learner.evaluate(t)        # {"cnn": ..., "nme": ...}

The runner (intsim/experiments/cil_run.py) adds checkpoints, traces, metrics and plots.
"""
from intsim.models.learners.base import (Callbacks, Learner, Option, OptionError, TrainSettings,
                                         augment_crop_flip)
from intsim.models.learners.bic import BiasLayer, BiC, BiCNet
from intsim.models.learners.der import DER, ExpandableNet
from intsim.models.learners.finetune import Finetune
from intsim.models.learners.icarl import ICaRL
from intsim.models.learners.lwf import LwF
from intsim.models.learners.memo import MEMO, split_backbone
from intsim.models.learners.replay import Replay

LEARNERS = {cls.name: cls for cls in (Finetune, Replay, ICaRL, LwF, BiC, DER, MEMO)}
METHOD_NAMES = tuple(LEARNERS)


def make_learner(method: str, scenario, backbone_fn, numerics, train=None, **options) -> Learner:
    """Instantiate the learner called `method` (one of METHOD_NAMES)."""
    if method not in LEARNERS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHOD_NAMES)}")
    return LEARNERS[method](scenario, backbone_fn, numerics, train, **options)


__all__ = ["Learner", "Option", "OptionError", "TrainSettings", "Callbacks", "augment_crop_flip", "LEARNERS",
           "METHOD_NAMES", "make_learner", "Finetune", "Replay", "ICaRL", "LwF", "BiC", "BiCNet",
           "BiasLayer", "DER", "MEMO", "ExpandableNet", "split_backbone"]
