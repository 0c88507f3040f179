"""DER (Yan et al. 2021, "Dynamically expandable representation") as in PyCIL / the paper's code.
(Not "dark experience replay".)

Model (ExpandableNet): extractors φ_0 … φ_t, one per task; features f = [φ_0(x), …, φ_t(x)]
concatenated; head z = W·f + b over every seen class; auxiliary head a = W_aux·φ_t(x) + b_aux with
(new classes + 1) outputs.

Task t:
  expand     φ_t = copy of φ_{t-1} (t > 0); φ_0 … φ_{t-1} frozen and in eval mode (their
             BatchNorm statistics do not move); new head over D·(t+1) features whose block
             [old classes, old features] is the previous head (rows of the new classes and the
             new feature columns are freshly initialised); new auxiliary head.
  loss       L = CE(z, y) + w_aux · CE(a, y_aux),   w_aux = 1,
             y_aux = y - known + 1 for new classes, 0 for every old class (t = 0: CE only)
  after      weight alignment: the new-class rows of W are scaled by
             γ = mean_{old c} ‖W_c‖ / mean_{new c} ‖W_c‖   (t > 0)
Exemplars (herding on the concatenated features) are replayed; prediction = argmax z.
"""
from __future__ import annotations

import numpy as np

from intsim.nn.losses import cross_entropy
from intsim.nn import Module, child_seed
from intsim.models.networks import IncrementalHead

from intsim.core.checks import NONNEGATIVE, Rule
from intsim.models.learners.base import Callbacks, Learner, Option


class ExpandableNet(Module):
    """[shared base →] extractors ext0 … ext{n-1} → concatenated features → head (+ aux head).

    With base = None this is DER's network; MEMO puts its shared shallow layers in `base`.
    forward(x) -> logits; forward_aux(x) -> (logits, aux logits or None);
    backward(dL/dlogits, dL/daux = None). Frozen extractors are back-propagated only when a
    trainable base sits below them."""

    def __init__(self, base: Module | None, first: Module, **kw):
        super().__init__(**kw)
        self.base = base
        self.ext_dim = first.feature_dim
        self.n_ext = 0
        self.head: IncrementalHead | None = None
        self.aux_head: IncrementalHead | None = None
        self.add_extractor(first)

    def extractors(self) -> list[Module]:
        return [getattr(self, f"ext{i}") for i in range(self.n_ext)]

    def add_extractor(self, ext: Module) -> None:
        setattr(self, f"ext{self.n_ext}", ext)
        self.n_ext += 1

    @property
    def feature_dim(self) -> int:
        return self.ext_dim * self.n_ext

    def features(self, x):
        h = self.base.forward(x) if self.base is not None else x
        return np.concatenate([e.forward(h) for e in self.extractors()], axis=1)

    def forward_aux(self, x):
        f = self.features(x)
        logits = self.head.forward(f)
        aux = self.aux_head.forward(f[:, -self.ext_dim:]) if self.aux_head is not None else None
        return logits, aux

    def forward(self, x):
        return self.head.forward(self.features(x))

    def backward(self, grad_logits, grad_aux=None):
        gf = self.head.backward(grad_logits)
        if grad_aux is not None:
            gf[:, -self.ext_dim:] += self.aux_head.backward(grad_aux)
        need_input_grad = self.base is not None and self.base.requires_grad
        gh = None
        for i, e in enumerate(self.extractors()):
            if not (e.requires_grad or need_input_grad):
                continue
            g = e.backward(gf[:, i * self.ext_dim:(i + 1) * self.ext_dim])
            gh = g if gh is None else gh + g
        if need_input_grad and gh is not None:
            return self.base.backward(gh)
        return gh


class DER(Learner):
    name = "der"
    uses_memory = True
    OPTIONS = {"aux_weight": Option(1.0, NONNEGATIVE),
               "weight_align": Option(True, Rule("bool"))}

    def build_model(self):
        return ExpandableNet(None, self.backbone_fn(self.init_seed), numerics=self.numerics,
                             seed=self.init_seed)

    def expand(self, t):
        net = self.model
        if t > 0:
            for e in net.extractors():
                e.freeze()
            net.add_extractor(net.extractors()[-1].copy().unfreeze())
        n_seen = self.scenario.n_seen(t)
        kind = self.train_settings.head
        head = IncrementalHead(net.feature_dim, n_seen, kind=kind, numerics=self.numerics,
                               seed=child_seed(self.init_seed, 2, t))
        if net.head is not None:
            old_W = net.head.params["weight"]
            head.params["weight"][:old_W.shape[0], :old_W.shape[1]] = old_W
            if "bias" in head.params:
                old_b = net.head.params["bias"]
                head.params["bias"][:old_b.shape[0]] = old_b
        net.head = head
        net.aux_head = (IncrementalHead(net.ext_dim, self.scenario.task_sizes[t] + 1,
                                        kind=kind, numerics=self.numerics,
                                        seed=child_seed(self.init_seed, 3, t))
                        if t > 0 else None)

    def set_train_mode(self):
        self.model.train()
        for e in self.model.extractors()[:-1]:
            e.eval()

    def step_loss(self, x, y):
        logits, aux = self.model.forward_aux(x)
        loss, grad = cross_entropy(logits, y)
        terms = {"ce": float(loss)}
        grad_aux = None
        if aux is not None:
            k, w = self.known, self.options["aux_weight"]
            y_aux = np.where(y >= k, y - k + 1, 0)
            loss_aux, grad_aux = cross_entropy(aux, y_aux)
            terms["aux_ce"] = float(loss_aux)
            loss += w * loss_aux
            grad_aux *= w
        self.note_batch(logits, y, **terms)
        self.model.backward(grad, grad_aux)
        return loss

    def after_training(self, t, callbacks: Callbacks):
        if t > 0 and self.options["weight_align"]:
            self.weight_align()

    def weight_align(self) -> float:
        """Scale the new-class rows of the head by mean‖w_old‖ / mean‖w_new‖; returns γ."""
        W = self.model.head.params["weight"]
        k = self.known
        norms = np.linalg.norm(W.astype(np.float64), axis=1)
        gamma = float(norms[:k].mean() / norms[k:].mean())
        W[k:] *= np.float32(gamma)
        return gamma
