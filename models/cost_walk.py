"""Walking a network or a learner to book what one training step, one evaluation pass and one
class-incremental task cost (operation counts and memory traffic; intsim.core.ledger).

How the walk sees the network: it runs the real code — `model.forward` / `model.backward`,
or the learner's own `step_loss` (its teacher, auxiliary heads, frozen parts and all) — once,
on float32 copies of the model (and teacher) whose every module records its calls: input and
output shapes, whether the input had values < 0 (what an "auto" quantizer sign resolves to),
train or eval mode, whether its backward ran and accumulated parameter gradients
(intsim.nn.costs.LayerUse). The copies run the fp32 BLAS path, so nothing of the run is
touched (no SR stream draws, no trace, no parameter or BatchNorm statistic of the real model
changes). Each call is then booked under the numerics the real module has, by the rules of
intsim.nn.costs (layers, losses, SGD) and intsim.core.costs (the linear operator).

Beyond the layers (per step, `step_ledgers`): the loss terms of each method (`loss_terms`),
one SGD step over every trained parameter, and the read of the input batch. Forward passes
over a data set in evaluation chunks (`chunked_forward`), herding (`herding_counts`) and NME
(`nme_counts`) are what models.cost_run adds per task. Herding and NME count as float32 work (the paper's code; intsim
computes them in float64 for reproducible ties): per class of n samples with d features and
m exemplars, normalisation n·d (mul, add, div) + n sqrt, mean n·d add, and per selected
exemplar n·d (3 add, 1 div, 1 mul) + n compares; NME per test sample and class d (add, mul,
add) and one compare. Not counted: DER/MEMO weight alignment (a few norms per task),
concatenations and layout copies (addressing).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterable, Optional

import numpy as np

from intsim.core.costs import FP32, Counts, Traffic
from intsim.core.ledger import Ledger
from intsim.core.modes import CostPart, TensorClass
from intsim.core.presets import preset
from intsim.models.calibration import calibratable, fixed_activation_numerics
from intsim.models.learners.bic import BiasLayer
from intsim.models.learners.der import ExpandableNet
from intsim.nn.costs import (ADD, CMP, DIV, MUL, SPECIAL, LayerUse, add_use, loss_counts,
                             sgd_counts)
from intsim.nn.linear import MatmulModule
from intsim.nn.module import Module
from intsim.nn.training import epoch_batch_sizes

FP32_NUMERICS = preset("fp32")


class _Recorder:
    """Wraps forward/backward of every module of some roots and records LayerUses."""

    def __init__(self):
        self.uses: list[LayerUse] = []
        self._open: dict = {}

    def watch(self, role: str, root: Module, numerics: dict) -> None:
        for m in root.modules():
            self._wrap(role, m, numerics.get(id(m)))

    def _wrap(self, role: str, m: Module, nm) -> None:
        fwd, bwd = m.forward, m.backward

        def forward(x, *args, **kw):
            y = fwd(x, *args, **kw)
            xa = np.asarray(x)
            use = LayerUse(m, role, xa.shape, np.shape(y[0] if isinstance(y, tuple) else y),
                           bool(xa.size and xa.min() < 0), m.training, nm)
            self.uses.append(use)
            self._open[id(m)] = use
            return y

        def backward(g, *args, **kw):
            use = self._open.get(id(m))
            if use is not None:
                use.backward, use.trains = True, bool(m.requires_grad)
            return bwd(g, *args, **kw)
        object.__setattr__(m, "forward", forward)
        object.__setattr__(m, "backward", backward)


def float_copy(model: Module) -> tuple[Module, dict]:
    """(a float32 copy of model without trace or SR stream, {id(copy module): the original
    module's numerics})."""
    cp = model.copy()
    numerics = {id(m): m.numerics for m in cp.modules()}
    cp.set_numerics(FP32_NUMERICS)
    cp.set_rng(None)
    return cp, numerics


def _book_model_types(ledger: Ledger, use: LayerUse, out_shapes: dict) -> bool:
    """The modules of intsim.models with arithmetic of their own (BiC's bias layer, DER/MEMO's
    sums of gradients); out_shapes: id(module) -> output shape of its forward call."""
    m = use.module
    if isinstance(m, BiasLayer):
        cols = (m.hi - m.lo) * (math.prod(use.out_shape) // max(use.out_shape[-1], 1))
        ledger.add((use.role, use.label, "forward"),
                   Counts().add(CostPart.LAYER, MUL, cols).add(CostPart.LAYER, ADD, cols))
        if use.backward:
            b = Counts().add(CostPart.LAYER, MUL, cols)
            if use.trains:
                b.add(CostPart.LAYER, MUL, cols).add(CostPart.LAYER, ADD, 2 * cols)
            ledger.add((use.role, use.label, "backward"), b)
        return True
    if isinstance(m, ExpandableNet):
        if use.backward:
            B = use.in_shape[0]
            need_input = m.base is not None and m.base.requires_grad
            used = [e for e in m.extractors() if e.requires_grad or need_input]
            h = (math.prod(out_shapes.get(id(m.base), use.in_shape)) if m.base is not None
                 else math.prod(use.in_shape))
            adds = (B * m.ext_dim if m.aux_head is not None else 0) + h * max(len(used) - 1, 0)
            ledger.add((use.role, use.label, "backward"),
                       Counts().add(CostPart.LAYER, ADD, adds))
        return True
    return False


def calibrated_numerics(use: LayerUse):
    """The numerics a layer evaluates with under eval_scale "calibrated" (models.calibration):
    a fixed activation scale (its value does not change the counts; its sign follows x)."""
    nm = use.numerics
    if isinstance(use.module, MatmulModule) and nm is not None and calibratable(nm):
        return fixed_activation_numerics(nm, 1.0, -1.0 if use.x_negative else 0.0)
    return nm


def book_uses(uses: Iterable[LayerUse], numerics=None,
              remap: Optional[Callable[[LayerUse], object]] = None) -> tuple[Ledger, list]:
    """(Ledger of the uses, labels of modules without a rule); `numerics` replaces every
    module's own (e.g. fp32 for a reference), remap(use) gives a use's numerics (e.g.
    calibrated_numerics)."""
    uses = list(uses)
    out_shapes = {id(u.module): u.out_shape for u in uses}
    ledger, unknown = Ledger(), []
    for use in uses:
        if numerics is not None or remap is not None:
            nm = numerics if numerics is not None else remap(use)
            use = LayerUse(use.module, use.role, use.in_shape, use.out_shape, use.x_negative,
                           use.training, nm, use.backward, use.trains)
        if not (_book_model_types(ledger, use, out_shapes) or add_use(ledger, use)):
            if not list(use.module.children()):
                unknown.append(f"{use.label} ({type(use.module).__name__})")
    return ledger, sorted(set(unknown))


# ----------------------------------------------------------------- one model, one step
@contextmanager
def recording(*roots: tuple[str, Module, dict]):
    rec = _Recorder()
    for role, root, numerics in roots:
        rec.watch(role, root, numerics)
    yield rec


def model_step_uses(model: Module, x: np.ndarray, grad_fn: Callable, train: bool = True
                    ) -> list[LayerUse]:
    """The uses of forward, then backward of grad_fn(output), of a float copy of `model`."""
    cp, nms = float_copy(model)
    cp.train(train)
    with recording(("student", cp, nms)) as rec:
        y = cp.forward(x)
        cp.backward(grad_fn(y))
    return rec.uses


def forward_uses(model: Module, x: np.ndarray, role: str = "eval", method: str = "forward"
                 ) -> tuple[list[LayerUse], tuple]:
    """(the uses, the output shape) of one eval-mode forward pass (`method`: "forward" or
    "features")."""
    cp, nms = float_copy(model)
    cp.eval()
    with recording((role, cp, nms)) as rec:
        out = getattr(cp, method)(x)
    return rec.uses, np.shape(out)


def trained_params(model: Module) -> int:
    """Values the optimizer updates: parameters of trainable modules, shared arrays once."""
    seen, n = set(), 0
    for _, p, _ in model.named_parameters(trainable_only=True):
        if id(p) not in seen:
            seen.add(id(p))
            n += p.size
    return n


def input_traffic(x_shape: tuple, cls: TensorClass = TensorClass.INPUTS) -> Traffic:
    return Traffic("x", cls, math.prod(x_shape), FP32, 1, 0)


# ------------------------------------------------------------------------ learners
def loss_terms(learner, rows: int) -> tuple[list[tuple[str, int, int]], Counts]:
    """The losses one step_loss of `learner` evaluates, as (loss, rows, columns), and the
    float work that combines their gradients (intsim.models.learners, "Methods")."""
    name, C, k = learner.name, learner.seen, learner.known
    teacher = learner.teacher is not None
    extra = Counts()
    terms = [("cross_entropy", rows, C)]
    if name == "icarl" and learner.options["loss"] == "bce":
        terms = [("bce_with_logits", rows, C)]
        if teacher:                                   # targets = sigmoid(z_old)
            extra.add(CostPart.LOSS, SPECIAL, rows * k).add(CostPart.LOSS, ADD, rows * k)
            extra.add(CostPart.LOSS, DIV, rows * k)
    elif name == "icarl" and teacher:
        terms.append(("kd_loss", rows, k))
        extra.add(CostPart.LOSS, ADD, rows * k)       # grad[:, :k] += g_kd
    elif name == "lwf":
        terms = [("cross_entropy", rows, C - k)] + ([("kd_loss", rows, k)] if teacher else [])
        extra.add(CostPart.LOSS, MUL, rows * k if teacher else 0)
    elif name == "bic" and teacher:
        terms.append(("kd_loss", rows, k))
        extra.add(CostPart.LOSS, MUL, rows * C + rows * k).add(CostPart.LOSS, ADD, rows * k)
    elif name in ("der", "memo") and learner.task > 0:
        new = learner.scenario.task_sizes[learner.task] + 1
        terms.append(("cross_entropy", rows, new))
        extra.add(CostPart.LOSS, MUL, rows * new)     # aux_weight · grad_aux
    return terms, extra


@contextmanager
def _swapped(learner, model, teacher):
    saved = learner.model, learner.teacher
    learner.model, learner.teacher = model, teacher
    try:
        yield
    finally:
        learner.model, learner.teacher = saved


def learner_step_uses(learner, x: np.ndarray, y: np.ndarray) -> list[LayerUse]:
    """The uses of one training step of `learner` on (x, y): its own step_loss run on float
    copies of its model (role "student") and teacher (role "teacher")."""
    student, s_nms = float_copy(learner.model)
    roots = [("student", student, s_nms)]
    teacher = None
    if learner.teacher is not None:
        teacher, t_nms = float_copy(learner.teacher)
        roots.append(("teacher", teacher, t_nms))
    with _swapped(learner, student, teacher), recording(*roots) as rec:
        learner.set_train_mode()
        learner.step_loss(x, y)
    return rec.uses


def step_ledgers(learner, x: np.ndarray, y: np.ndarray, inputs: bool = True
                 ) -> tuple[Ledger, Ledger, list]:
    """(ledger, its fp32 reference, modules without a rule) of one training step: every
    layer use, the losses, one SGD step over the trained parameters and (inputs=True) the
    read of the input batch."""
    uses = learner_step_uses(learner, x, y)
    real, unknown = book_uses(uses)
    ref, _ = book_uses(uses, FP32_NUMERICS)
    terms, extra = loss_terms(learner, len(x))
    s = learner.train_settings
    sgd, sgd_t = sgd_counts(trained_params(learner.model), s.momentum, s.weight_decay)
    for ledger in (real, ref):
        for name, rows, cols in terms:
            ledger.add(("student", "loss", name), loss_counts(name, rows, cols))
        ledger.add(("student", "loss", "combine"), extra)
        ledger.add(("student", "sgd", "step"), sgd, sgd_t)
        if inputs:
            ledger.add(("student", "input", "batch"), traffic=[input_traffic(x.shape)])
    return real, ref, unknown


def chunked_forward(model: Module, X: np.ndarray, chunk: int, role: str,
                    method: str = "forward", cls: TensorClass = TensorClass.INPUTS,
                    remap: Optional[Callable] = None) -> tuple[Ledger, Ledger, int]:
    """(ledger, fp32 reference, output width) of eval-mode forward passes over X in chunks
    of `chunk` rows (intsim.models.learners.Learner._batched); remap: see book_uses."""
    real, ref, width = Ledger(), Ledger(), 0
    sizes = epoch_batch_sizes(len(X), chunk)
    for size in sorted(set(sizes)):
        uses, shape = forward_uses(model, X[:size], role, method)
        width = shape[-1]
        times = sizes.count(size)
        real.merge(book_uses(uses, remap=remap)[0], times)
        ref.merge(book_uses(uses, FP32_NUMERICS)[0], times)
    for ledger in (real, ref):
        ledger.add((role, "input", method), traffic=[Traffic("x", cls, X.size, FP32, 1, 0)])
    return real, ref, width


def herding_counts(n: int, d: int, m: int) -> Counts:
    """Herding of m exemplars among n samples of d features (models.exemplars; float32)."""
    c = Counts()
    m = min(m, n)
    c.add(CostPart.EXEMPLARS, MUL, n * d + m * n * d)
    c.add(CostPart.EXEMPLARS, ADD, 2 * n * d + m * (3 * n * d + d))
    c.add(CostPart.EXEMPLARS, DIV, n * d + d + m * n * d)
    c.add(CostPart.EXEMPLARS, SPECIAL, n)
    c.add(CostPart.EXEMPLARS, CMP, m * n)
    return c


def nme_counts(n_test: int, classes: int, d: int, n_memory: int) -> Counts:
    """Nearest-mean-of-exemplars: normalised exemplar means, then per test sample the squared
    distance to every class mean and the argmin (models.exemplars; float32)."""
    c = Counts()
    norm = n_test + n_memory + classes                   # rows L2-normalised
    c.add(CostPart.EXEMPLARS, MUL, norm * d + n_test * classes * d)
    c.add(CostPart.EXEMPLARS, ADD, norm * d + n_memory * d + 2 * n_test * classes * d)
    c.add(CostPart.EXEMPLARS, DIV, norm * d + classes * d)
    c.add(CostPart.EXEMPLARS, SPECIAL, norm)
    c.add(CostPart.EXEMPLARS, CMP, n_test * classes)
    return c
