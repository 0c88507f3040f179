"""The model-spec language of `intsim golden --model` and `overflow-report --train --model`.

A spec names what the hardware verifies — a network, a block, or one layer of given shapes:

    fcnet:IN,HIDDEN,FEATURE[,CLASSES]     FCNet(IN→HIDDEN→FEATURE, ReLU) + a CLASSES-way linear head
                                          (default 10); input (B, IN); batch B from --batch
    smallcnn:C,H,W,C1,C2[,CLASSES]        SmallCNN (conv3×3 pad 1 C→C1, BN, ReLU, max-pool 2,
                                          conv3×3 C1→C2, BN, ReLU, max-pool 2, global average)
                                          + head; input (B, C, H, W), H, W ≥ 4; B from --batch
    linear:B,K,N                          one Linear layer K→N without bias, batch B:
                                          forward (B, K)·(K, N), i.e. M = B, reduction K
    conv:B,C,H,W,COUT,KSIZE[,STRIDE[,PAD]]  one Conv2d (no bias), input (B, C, H, W), square
                                          kernel KSIZE (stride 1, padding 0 by default): per
                                          image an im2col matmul (L, C·KSIZE²)·(C·KSIZE², COUT)
    resnet-block:B,C,H,W,COUT[,STRIDE]    one ResNet basic block (two 3×3 conv + BN, ReLU,
                                          shortcut "A"), input (B, C, H, W), stride 1 default

Layer labels (the paths of the golden file): fcnet `backbone.fc1 …, head`; smallcnn
`backbone.conv1, backbone.conv2, head`; linear `linear`; conv `conv`; resnet-block
`block.conv1, block.conv2`.

Loss: networks with a head use softmax cross-entropy on uniform labels; single layers and
blocks use the projection loss L = (1/B)·Σ r ⊙ y with r ~ uniform [−1, 1) of the output's
shape (drawn after x each step), so dL/dy = r / B: a dense, seeded output gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from intsim.models.networks import FCNet, IncrementalNet, SmallCNN
from intsim.nn import BasicBlock, Conv2d, Linear, Sequential
from intsim.nn.losses import cross_entropy
from intsim.nn.conv import conv_out_size
from intsim.nn.module import Module, child_seed

DEFAULT_CLASSES = 10

#: kind -> (argument names, how many are required, defaults of the optional ones)
GRAMMAR = {
    "fcnet": (("IN", "HIDDEN", "FEATURE", "CLASSES"), 3, (DEFAULT_CLASSES,)),
    "smallcnn": (("C", "H", "W", "C1", "C2", "CLASSES"), 5, (DEFAULT_CLASSES,)),
    "linear": (("B", "K", "N"), 3, ()),
    "conv": (("B", "C", "H", "W", "COUT", "KSIZE", "STRIDE", "PAD"), 6, (1, 0)),
    "resnet-block": (("B", "C", "H", "W", "COUT", "STRIDE"), 5, (1,)),
}
FORMS = ("fcnet:IN,HIDDEN,FEATURE[,CLASSES], smallcnn:C,H,W,C1,C2[,CLASSES], linear:B,K,N, "
         "conv:B,C,H,W,COUT,KSIZE[,STRIDE[,PAD]], resnet-block:B,C,H,W,COUT[,STRIDE]")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec (module docstring); `values` in GRAMMAR order, defaults filled."""
    kind: str
    values: tuple

    @property
    def args(self) -> dict:
        return dict(zip(GRAMMAR[self.kind][0], self.values))

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(map(str, self.values))}"

    # -- the old ModelSpec fields (fcnet) ---------------------------------------------------
    def __getattr__(self, name):
        alias = {"in_dim": "IN", "hidden": "HIDDEN", "feature": "FEATURE", "classes": "CLASSES"}
        if name in alias and self.kind in ("fcnet", "smallcnn") and alias[name] in self.args:
            return self.args[alias[name]]
        raise AttributeError(name)

    @property
    def fixed_batch(self) -> Optional[int]:
        """The batch the spec fixes (layer and block specs), or None (taken from --batch)."""
        return self.args.get("B")

    @property
    def has_head(self) -> bool:
        return self.kind in ("fcnet", "smallcnn")

    def input_shape(self, batch: int) -> tuple:
        a = self.args
        if self.kind == "fcnet":
            return (batch, a["IN"])
        if self.kind == "linear":
            return (batch, a["K"])
        return (batch, a["C"], a["H"], a["W"])

    def output_shape(self, batch: int) -> tuple:
        """Shape of what the loss sees: logits (B, CLASSES) or the layer's output."""
        a = self.args
        if self.has_head:
            return (batch, a["CLASSES"])
        if self.kind == "linear":
            return (batch, a["N"])
        if self.kind == "conv":
            k, s, p = a["KSIZE"], a["STRIDE"], a["PAD"]
            return (batch, a["COUT"], conv_out_size(a["H"], k, s, p),
                    conv_out_size(a["W"], k, s, p))
        s = a["STRIDE"]
        return (batch, a["COUT"], conv_out_size(a["H"], 3, s, 1), conv_out_size(a["W"], 3, s, 1))

    def loss_fn(self):
        """cross_entropy (networks with a head) or projection_loss (layers and blocks)."""
        return cross_entropy if self.has_head else projection_loss

    def synthetic_batch(self, data: np.random.Generator, batch: int) -> tuple:
        """(x, target) of one step: x ~ uniform [-1, 1) float32 of the input shape, then the
        labels ~ integers(0, CLASSES) or the projection r ~ uniform [-1, 1) of the output
        shape, both from `data` in that order."""
        x = data.uniform(-1.0, 1.0, self.input_shape(batch)).astype(np.float32)
        if self.has_head:
            return x, data.integers(0, self.args["CLASSES"], batch).astype(np.int64)
        return x, data.uniform(-1.0, 1.0, self.output_shape(batch)).astype(np.float32)

    def build(self, numerics, seed: int) -> Module:
        """The network, every layer under `numerics`, weights seeded from `seed`."""
        a = self.args
        if self.kind == "fcnet":
            backbone = FCNet(a["IN"], a["HIDDEN"], a["FEATURE"], numerics=numerics, seed=seed)
        elif self.kind == "smallcnn":
            backbone = SmallCNN(a["C"], (a["C1"], a["C2"]), numerics=numerics, seed=seed)
        if self.has_head:
            return IncrementalNet(backbone, a["CLASSES"], numerics=numerics,
                                  seed=child_seed(seed, 1))
        if self.kind == "linear":
            return Sequential(("linear", Linear(a["K"], a["N"], bias=False, numerics=numerics,
                                                seed=seed)), numerics=numerics, seed=seed)
        if self.kind == "conv":
            return Sequential(("conv", Conv2d(a["C"], a["COUT"], a["KSIZE"], a["STRIDE"],
                                              a["PAD"], bias=False, numerics=numerics,
                                              seed=seed)), numerics=numerics, seed=seed)
        return Sequential(("block", BasicBlock(a["C"], a["COUT"], a["STRIDE"], "A",
                                               numerics=numerics, seed=seed)),
                          numerics=numerics, seed=seed)

    def describe(self) -> str:
        """How the network is built and seeded (the golden file's `init` attribute)."""
        if self.kind == "fcnet":
            return ("FCNet(IN, HIDDEN, FEATURE, seed=seed) + head IncrementalNet(CLASSES, "
                    "seed=child_seed(seed, 1))")
        if self.kind == "smallcnn":
            return ("SmallCNN(C, (C1, C2), seed=seed) + head IncrementalNet(CLASSES, "
                    "seed=child_seed(seed, 1))")
        return {"linear": "Linear(K, N, bias=False, seed=seed)",
                "conv": "Conv2d(C, COUT, KSIZE, STRIDE, PAD, bias=False, seed=seed)",
                "resnet-block": "BasicBlock(C, COUT, STRIDE, shortcut='A', seed=seed)"
                }[self.kind]


def _fail(spec, why: str) -> ValueError:
    return ValueError(f"model: {why}, got {spec!r}; expected one of: {FORMS}")


def parse_model(spec: str) -> ModelSpec:
    """Parse a model spec (module docstring); errors start with 'model:'."""
    if not isinstance(spec, str) or ":" not in spec:
        raise _fail(spec, "expected KIND:DIMS")
    kind, dims = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind not in GRAMMAR:
        raise _fail(spec, f"unknown model kind {kind!r}")
    names, required, defaults = GRAMMAR[kind]
    try:
        vals = [int(v) for v in dims.split(",")]
    except ValueError:
        raise _fail(spec, "dimensions must be integers") from None
    if not required <= len(vals) <= len(names):
        raise _fail(spec, f"{kind} takes {required}" + (f" to {len(names)}" if len(names) >
                                                         required else "") + " integers")
    vals += list(defaults[len(vals) - required:])
    args = dict(zip(names, vals))
    for n, v in args.items():
        if v < (0 if n == "PAD" else 1):
            raise _fail(spec, f"{n} must be {'>= 0' if n == 'PAD' else 'positive'}")
    if args.get("CLASSES", 2) < 2:
        raise _fail(spec, "CLASSES must be at least 2")
    if kind == "smallcnn" and min(args["H"], args["W"]) < 4:
        raise _fail(spec, "smallcnn needs H, W >= 4 (two 2×2 max-pools)")
    if kind == "conv":
        k, s, p = args["KSIZE"], args["STRIDE"], args["PAD"]
        if min(conv_out_size(args["H"], k, s, p), conv_out_size(args["W"], k, s, p)) < 1:
            raise _fail(spec, "the kernel does not fit the padded input")
    if kind == "resnet-block" and args["COUT"] < args["C"]:
        raise _fail(spec, "resnet-block needs COUT >= C (shortcut A pads channels)")
    return ModelSpec(kind, tuple(vals))


def projection_loss(out: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray]:
    """L = (1/B)·Σ r ⊙ out (float32), dL/dout = r / B — a seeded dense output gradient."""
    B = out.shape[0]
    g = (np.asarray(r, np.float32) / np.float32(B)).astype(np.float32)
    return float(np.sum(g.astype(np.float64) * out.astype(np.float64))), g
