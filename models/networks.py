"""Networks of the paper: FCNet (HAR), CIFAR ResNet-32, a small CNN, and the CIL wrapper.

Backbones map an input to a feature vector (B, feature_dim) and expose `feature_dim`; they are
Sequentials with named children so a CIL method can split them (MEMO: shared shallow part,
per-task deep part). `IncrementalNet` puts a growable linear classifier on top of a backbone.

Seeds: each layer's init seed is child_seed(seed, i) for its position i, so one int fixes the
whole network. numerics and rng are handed to every layer (set_numerics / set_rng change them).
"""
from __future__ import annotations


import numpy as np

from intsim.core.checks import NONNEGATIVE_INT, POSITIVE_INT, Rule, check
from intsim.nn import (BasicBlock, BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MatmulModule,
                       MaxPool2d, Module, ReLU, Sequential, child_seed, kaiming_normal,
                       torch_default_uniform)
from intsim.nn.module import check_args

#: classifier heads: "bias_normal" (intsim) and "nobias_uniform" (the published code)
HEADS = ("bias_normal", "nobias_uniform")


def torch_default_init(module: Module) -> Module:
    """Redraw the weight of every Linear/Conv2d inside `module` as PyTorch's default layer
    init, U(±1/√fan_in) (fan_in = in_features, or Cin·k·k), from default_rng(layer seed);
    biases become 0. In place; returns the module."""
    for m in module.modules():
        if isinstance(m, MatmulModule):
            W = m.params["weight"]
            m.params["weight"] = torch_default_uniform(W.shape, int(np.prod(W.shape[1:])),
                                                       m.seed, W.dtype)
            if "bias" in m.params:
                m.params["bias"][...] = 0
    return module


class FCNet(Sequential):
    """The HAR network: Linear (no bias) → ReLU blocks.

        fc1: in_dim → hidden, relu1
        fc2 … fc{n_hidden+1}: hidden → hidden, ReLU      (n_hidden extra hidden layers)
        fc{n_hidden+2}: hidden → feature_dim, ReLU        (the feature layer)

    so FCNet(405, 405, 405) (n_hidden=0) = fc1 405→405, relu1, fc2 405→405, relu2: the paper's
    405→405→405 network; the output is the feature (B, feature_dim)."""

    def __init__(self, in_dim: int, hidden: int, feature_dim: int, n_hidden: int = 0, *,
                 numerics=None, seed: int = 0, rng=None):
        check_args("FCNet", locals(), {"in_dim": POSITIVE_INT, "hidden": POSITIVE_INT,
                                       "feature_dim": POSITIVE_INT, "n_hidden": NONNEGATIVE_INT})
        dims = [in_dim] + [hidden] * (n_hidden + 1) + [feature_dim]
        layers = []
        for i in range(len(dims) - 1):
            layers.append((f"fc{i + 1}", Linear(dims[i], dims[i + 1], bias=False,
                                                numerics=numerics, seed=child_seed(seed, i),
                                                rng=rng)))
            layers.append((f"relu{i + 1}", ReLU(numerics=numerics, rng=rng)))
        super().__init__(*layers, numerics=numerics, seed=seed, rng=rng)
        self.in_dim, self.feature_dim = in_dim, feature_dim


def _stage(in_ch: int, out_ch: int, n_blocks: int, stride: int, shortcut: str, seed: int,
           numerics, rng) -> Sequential:
    blocks = [BasicBlock(in_ch if b == 0 else out_ch, out_ch, stride if b == 0 else 1,
                         shortcut, numerics=numerics, seed=child_seed(seed, b), rng=rng)
              for b in range(n_blocks)]
    return Sequential(*blocks, numerics=numerics, seed=seed, rng=rng)


class CifarResNet(Sequential):
    """ResNet-(6n+2) for 32×32 inputs (He et al. 2016 §4.2; PyCIL's resnet32 with n = 5):

        conv1 3×3 in→16 (no bias), bn1, relu
        stage1: n BasicBlocks 16→16, stride 1
        stage2: n BasicBlocks 16→32, first stride 2      (32×32 → 16×16)
        stage3: n BasicBlocks 32→64, first stride 2      (16×16 → 8×8)
        pool: global average → features (B, 64)
    Shortcut option "A" (parameter-free, PyCIL) by default."""

    def __init__(self, depth: int = 32, in_channels: int = 3, widths=(16, 32, 64),
                 shortcut: str = "A", *, numerics=None, seed: int = 0, rng=None):
        check_args("CifarResNet", locals(), {"depth": Rule("int", minimum=8),
                                             "in_channels": POSITIVE_INT})
        if (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        kw = dict(numerics=numerics, rng=rng)
        w1, w2, w3 = widths
        super().__init__(
            ("conv1", Conv2d(in_channels, w1, 3, 1, 1, bias=False, seed=child_seed(seed, 0),
                             **kw)),
            ("bn1", BatchNorm2d(w1, **kw)),
            ("relu", ReLU(**kw)),
            ("stage1", _stage(w1, w1, n, 1, shortcut, child_seed(seed, 1), **kw)),
            ("stage2", _stage(w1, w2, n, 2, shortcut, child_seed(seed, 2), **kw)),
            ("stage3", _stage(w2, w3, n, 2, shortcut, child_seed(seed, 3), **kw)),
            ("pool", GlobalAvgPool(**kw)),
            numerics=numerics, seed=seed, rng=rng)
        self.depth, self.feature_dim = depth, w3


def resnet32(in_channels: int = 3, *, numerics=None, seed: int = 0, rng=None) -> CifarResNet:
    """CIFAR ResNet-32: 3 stages × 5 basic blocks, 16/32/64 channels, 64-d feature."""
    return CifarResNet(32, in_channels, numerics=numerics, seed=seed, rng=rng)


class SmallCNN(Sequential):
    """A small CNN for Fashion-MNIST (1×28×28) or sklearn digits (1×8×8):

        conv1 3×3 pad 1 in→c1 (no bias), bn1, relu1, pool1 2×2 max
        conv2 3×3 pad 1 c1→c2 (no bias), bn2, relu2, pool2 2×2 max
        pool: global average → features (B, c2)
    28×28 → 14×14 → 7×7;  8×8 → 4×4 → 2×2."""

    def __init__(self, in_channels: int = 1, channels=(32, 64), *, numerics=None, seed: int = 0,
                 rng=None):
        check("SmallCNN: in_channels", in_channels, POSITIVE_INT)
        if not (isinstance(channels, (tuple, list)) and len(channels) == 2):
            raise ValueError(f"SmallCNN: channels: expected two channel counts, got {channels!r}")
        c1, c2 = channels
        kw = dict(numerics=numerics, rng=rng)
        super().__init__(
            ("conv1", Conv2d(in_channels, c1, 3, 1, 1, bias=False, seed=child_seed(seed, 0),
                             **kw)),
            ("bn1", BatchNorm2d(c1, **kw)), ("relu1", ReLU(**kw)), ("pool1", MaxPool2d(2, **kw)),
            ("conv2", Conv2d(c1, c2, 3, 1, 1, bias=False, seed=child_seed(seed, 1), **kw)),
            ("bn2", BatchNorm2d(c2, **kw)), ("relu2", ReLU(**kw)), ("pool2", MaxPool2d(2, **kw)),
            ("pool", GlobalAvgPool(**kw)),
            numerics=numerics, seed=seed, rng=rng)
        self.feature_dim = c2


class IncrementalHead(Linear):
    """Growable classifier: logits = f·Wᵀ (+ b), W (n_classes, in_dim), the matmul through the
    linear operator like every layer.

    kind "bias_normal" (intsim): a bias b (n_classes,), zero for new classes; new rows
    N(0, 1/in_dim). kind "nobias_uniform" (the published code's SimpleLinear: kaiming_uniform_
    with nonlinearity "linear", no bias): new rows U(±√(3/in_dim)). grow(n_new, seed) appends
    n_new rows drawn from default_rng(seed); old rows are kept bit-exactly (copied, as the
    published code does). Gradients are reset (zero) to the new shape."""

    OUT_FEATURES = NONNEGATIVE_INT

    def __init__(self, in_dim: int, n_classes: int = 0, *, kind: str = "bias_normal",
                 numerics=None, seed: int = 0, rng=None):
        if kind not in HEADS:
            raise ValueError(f"head: expected one of {HEADS}, got {kind!r}")
        super().__init__(in_dim, n_classes, bias=kind == "bias_normal", gain=1.0,
                         numerics=numerics, seed=seed, rng=rng)
        self.kind = kind
        if kind == "nobias_uniform":
            self.params["weight"] = self._rows(n_classes, seed, self.params["weight"].dtype)

    @property
    def n_classes(self) -> int:
        return self.out_features

    def _rows(self, n: int, seed: int, dtype) -> np.ndarray:
        shape = (n, self.in_features)
        if self.kind == "nobias_uniform":
            bound = np.sqrt(3.0 / self.in_features) if self.in_features else 0.0
            return np.random.default_rng(seed).uniform(-bound, bound, shape).astype(dtype)
        return kaiming_normal(shape, self.in_features, seed, self.gain, dtype=dtype)

    def grow(self, n_new: int, seed: int) -> None:
        W = self.params["weight"]
        self._add_param("weight", np.concatenate([W, self._rows(n_new, seed, W.dtype)]))
        if "bias" in self.params:
            b = self.params["bias"]
            self._add_param("bias", np.concatenate([b, np.zeros(n_new, b.dtype)]))
        self.out_features += n_new
        self._cache = {}


class IncrementalNet(Module):
    """backbone → features (B, D) → head → logits (B, n_classes).

    forward(x) returns logits and keeps the features in `self.last_features`;
    features(x) runs the backbone only;
    backward(dL/dlogits, grad_features=None) adds the optional extra dL/dfeatures (e.g. a
    feature-space loss) to what comes back through the head, then backpropagates the backbone.
    Returns dL/dx."""

    def __init__(self, backbone: Module, n_classes: int = 0, *, head: str = "bias_normal",
                 numerics=None, seed: int = 0, rng=None):
        super().__init__(numerics=numerics, seed=seed, rng=rng)
        if not isinstance(backbone, Module) or not hasattr(backbone, "feature_dim"):
            raise ValueError(f"IncrementalNet: backbone: expected an intsim.nn.Module with a "
                             f"feature_dim, got {backbone!r}")
        self.backbone = backbone
        self.head = IncrementalHead(backbone.feature_dim, n_classes, kind=head,
                                    numerics=numerics, seed=child_seed(seed, 0), rng=rng)
        self.feature_dim = backbone.feature_dim
        self.last_features = None

    @property
    def n_classes(self) -> int:
        return self.head.n_classes

    def grow(self, n_new: int, seed: int | None = None) -> None:
        """Add n_new classes. Default seed: child_seed(self.seed, 1, n_classes before growing),
        a function of the state, so a resumed run grows exactly like an uninterrupted one."""
        if seed is None:
            seed = child_seed(self.seed, 1, self.n_classes)
        self.head.grow(n_new, seed)

    def features(self, x: np.ndarray) -> np.ndarray:
        return self.backbone.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.last_features = self.backbone.forward(x)
        return self.head.forward(self.last_features)

    def backward(self, grad_logits: np.ndarray, grad_features: np.ndarray | None = None):
        g = self.head.backward(grad_logits)
        if grad_features is not None:
            g = g + grad_features
        return self.backbone.backward(g)
