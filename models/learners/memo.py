"""MEMO (Zhou et al. 2023, "A model or 603 exemplars") as in PyCIL / the paper's code.

Like DER (see der.py), but only the deep part of the backbone is replicated:
  base       the shallow layers, shared by all tasks ("generalized blocks"): FCNet's first layer
             (fc1, relu1), ResNet-32 up to and including stage 2, SmallCNN up to pool1.
             Trained in every task (train_base = True, the paper's setting); with
             train_base = False it is frozen (eval mode) after task 0.
  deep part  one copy per task ("specialized blocks"), initialised from the previous copy;
             old copies frozen and in eval mode.
Loss, auxiliary head (new classes + 1 outputs, weight 1) and weight alignment as DER. With a
trainable base, the gradient reaches it through every deep copy (frozen copies pass dL/dx on).
"""
from __future__ import annotations

from intsim.nn import Module, Sequential

from intsim.core.checks import Rule
from intsim.models.learners.base import Option
from intsim.models.learners.der import DER, ExpandableNet

# the last child of the shared part, by backbone class
DEFAULT_CUT = {"FCNet": "relu1", "CifarResNet": "stage2", "SmallCNN": "pool1"}


def split_backbone(backbone: Module, cut: str, numerics=None) -> tuple[Sequential, Sequential]:
    """Split a Sequential backbone after its child `cut` into (base, deep); deep keeps
    `feature_dim`."""
    items = list(backbone.named_children())
    names = [n for n, _ in items]
    if cut not in names:
        raise ValueError(f"memo: cut {cut!r} is not a child of {type(backbone).__name__} "
                         f"(children: {names})")
    i = names.index(cut) + 1
    if i == len(items):
        raise ValueError(f"memo: cut {cut!r} leaves no deep part")
    base = Sequential(*items[:i], numerics=numerics)
    deep = Sequential(*items[i:], numerics=numerics)
    deep.feature_dim = backbone.feature_dim
    return base, deep


class MEMO(DER):
    name = "memo"
    OPTIONS = {**DER.OPTIONS, "train_base": Option(True, Rule("bool")),
               "cut": Option(None, Rule("str", optional=True))}

    def build_model(self):
        backbone = self.backbone_fn(self.init_seed)
        cut = self.options["cut"] or DEFAULT_CUT.get(type(backbone).__name__)
        if cut is None:
            raise ValueError(f"memo: no default cut for {type(backbone).__name__}; "
                             f"set method option 'cut'")
        base, deep = split_backbone(backbone, cut, self.numerics)
        return ExpandableNet(base, deep, numerics=self.numerics, seed=self.init_seed)

    def expand(self, t):
        super().expand(t)
        if t > 0 and not self.options["train_base"]:
            self.model.base.freeze()

    def set_train_mode(self):
        super().set_train_mode()
        if self.task > 0 and not self.options["train_base"]:
            self.model.base.eval()
