"""ResNet basic block (He et al. 2016), CIFAR variant as in PyCIL's resnet32.

    out = relu( bn2(conv2( relu(bn1(conv1(x))) )) + shortcut(x) )
    conv1: 3×3, stride s, pad 1;  conv2: 3×3, stride 1, pad 1;  both without bias.
Backward: g = relu'(out)·dy;  dx = main.backward(g) + shortcut.backward(g).

Shortcut when the shape changes (stride ≠ 1 or Cin ≠ Cout):
  "A" (PyCIL DownsampleA, parameter-free): x[:, :, ::s, ::s], then zero channels appended
      after the Cin input channels up to Cout.
  "B": 1×1 conv (stride s, no bias) + BatchNorm2d.
Otherwise the identity.
"""
from __future__ import annotations

import numpy as np

from intsim.nn.activation import Identity, ReLU
from intsim.nn.container import Sequential
from intsim.nn.conv import Conv2d
from intsim.core.checks import POSITIVE_INT, Rule
from intsim.nn.module import Module, check_args, child_seed
from intsim.nn.norm import BatchNorm2d


SHORTCUTS = ("A", "B")


class ShortcutA(Module):
    """y = concat(x[:, :, ::s, ::s], zeros) along channels, Cin -> Cout (Cout >= Cin).
    dx[:, :, ::s, ::s] = dy[:, :Cin], 0 elsewhere."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, **kw):
        check_args("ShortcutA", locals(), {"in_channels": POSITIVE_INT,
                                           "out_channels": POSITIVE_INT, "stride": POSITIVE_INT})
        super().__init__(**kw)
        if out_channels < in_channels:
            raise ValueError("ShortcutA: out_channels must be >= in_channels")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = self.stride
        sub = x[:, :, ::s, ::s]
        B, C, H, W = sub.shape
        y = np.zeros((B, self.out_channels, H, W), dtype=x.dtype)
        y[:, :C] = sub
        self._cache = {"shape": x.shape}
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        s = self.stride
        dx = np.zeros(self._cache["shape"], dtype=grad_out.dtype)
        dx[:, :, ::s, ::s] = grad_out[:, :self.in_channels]
        return dx

    def extra_repr(self) -> str:
        return f"{self.in_channels}->{self.out_channels}, stride={self.stride}"


class BasicBlock(Module):
    """Two 3×3 conv-BN pairs with a residual connection (see module docstring).
    Children: conv1, bn1, relu1, conv2, bn2, shortcut, relu2. Conv seeds derive from `seed`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = "A", *, numerics=None, seed: int = 0, rng=None):
        check_args("BasicBlock", locals(), {
            "in_channels": POSITIVE_INT, "out_channels": POSITIVE_INT, "stride": POSITIVE_INT,
            "shortcut": Rule("str", choices=SHORTCUTS)})
        super().__init__(numerics=numerics, seed=seed, rng=rng)
        kw = dict(numerics=numerics, rng=rng)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, 1, bias=False,
                            seed=child_seed(seed, 0), **kw)
        self.bn1 = BatchNorm2d(out_channels, **kw)
        self.relu1 = ReLU(**kw)
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, 1, bias=False,
                            seed=child_seed(seed, 1), **kw)
        self.bn2 = BatchNorm2d(out_channels, **kw)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = Identity(**kw)
        elif shortcut == "A":
            self.shortcut = ShortcutA(in_channels, out_channels, stride, **kw)
        elif shortcut == "B":
            self.shortcut = Sequential(
                ("conv", Conv2d(in_channels, out_channels, 1, stride, 0, bias=False,
                                seed=child_seed(seed, 2), **kw)),
                ("bn", BatchNorm2d(out_channels, **kw)), **kw)
        else:
            raise ValueError(f"BasicBlock: shortcut must be 'A' or 'B', got {shortcut!r}")
        self.relu2 = ReLU(**kw)

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = self.relu1.forward(self.bn1.forward(self.conv1.forward(x)))
        h = self.bn2.forward(self.conv2.forward(h))
        return self.relu2.forward(h + self.shortcut.forward(x))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        g = self.relu2.backward(grad_out)
        gm = self.bn2.backward(g)
        gm = self.conv2.backward(gm)
        gm = self.conv1.backward(self.bn1.backward(self.relu1.backward(gm)))
        return gm + self.shortcut.backward(g)
