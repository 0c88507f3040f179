"""Sequential: y = f_n(…f_2(f_1(x))), backward in reverse order."""
from __future__ import annotations

from intsim.nn.module import Module


class Sequential(Module):
    """Children run in registration order.

    Sequential(m0, m1, ...)                names "0", "1", ...
    Sequential(("conv1", m0), ("bn1", m1)) explicit names (also reachable as attributes)
    """

    def __init__(self, *modules, numerics=None, seed: int = 0, rng=None):
        super().__init__(numerics=numerics, seed=seed, rng=rng)
        for i, m in enumerate(modules):
            name, m = m if isinstance(m, tuple) and len(m) == 2 else (str(i), m)
            if not isinstance(m, Module) or not isinstance(name, str):
                raise ValueError(f"Sequential: module {i}: expected an intsim.nn.Module or a "
                                 f"(name, Module) pair, got {modules[i]!r}")
            self.add_module(name, m)

    def forward(self, x):
        for m in self._children.values():
            x = m.forward(x)
        return x

    def backward(self, grad_out):
        for m in reversed(list(self._children.values())):
            grad_out = m.backward(grad_out)
        return grad_out

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._children[key]
        return list(self._children.values())[key]
