"""The common machinery of every class-incremental learner.

A learner owns a model (an ``intsim.nn.Module`` whose ``forward(x)`` returns the logits of every
class seen so far and whose ``features(x)`` returns the feature vector), an exemplar memory, and
— for distillation methods — a frozen teacher. The base class runs, for task ``t``::

    begin_task(t)        teacher = frozen eval copy of the model (if the method uses one),
                         then expand(t): grow the head / add an extractor / add a bias layer
    fit(t)               epochs × shuffled mini-batches of training_set(t):
                             zero_grad; loss = step_loss(x, y)  (forward, loss, backward); SGD step
                         SGD momentum 0.9, weight decay 2e-4, lr schedule per epoch, a new
                         optimizer per task (PyCIL)
    after_training(t)    method-specific (BiC stage 2, DER/MEMO weight alignment)
    update_memory(t)     herding on the current model's features (float)
    evaluate(t)          predictions on the test data of all classes seen so far:
                         "cnn" = the top logit (ties: tie_rule); "nme" = nearest mean of
                         exemplars (methods with has_nme)

Evaluation batching (TrainSettings). With dynamic activation scales a quantized network's
output for one sample depends on the other samples of its batch, so how the test data is cut
into batches is part of the result: `eval_batch_size` (default: the training batch size),
`eval_order` ("dataset" order or "class_sorted", the published code's unshuffled per-class
loader), `eval_scale` ("dynamic", or "calibrated": a fixed activation scale per layer from the
training data, models/calibration.py). Features for herding and class means are computed in
batches of `feature_batch_size`, over the task's data ("task") or one class at a time
("per_class", the published code).

A method subclass writes only its loss (``step_loss``) and, where needed, ``build_model``,
``expand``, ``training_set`` and ``after_training``.

Numerics: the learner never looks at the numerics. The model (and the teacher, a copy that shares
the numerics object) run every weight matmul through ``intsim.core.linear_op`` when the preset is not
fp32. Losses, the optimizer, BatchNorm, BiC's bias layer, herding and NME stay float
(docs/method.md).

Randomness, all re-derivable from (master seed, task index) so that a run resumed from the
checkpoint after task t continues exactly like an uninterrupted one:

    model init            scenario.seed_for("init") (growth seeds are functions of the state)
    mini-batch order      default_rng(scenario.seed_for(f"shuffle/task{t}")), one permutation
                          per epoch
    augmentation          default_rng(scenario.seed_for(f"augment/task{t}"))
    stochastic rounding   a fresh SRStream(scenario.seed_for("sr"), f"task{t}") per task,
                          shared by student and teacher
    exemplars             herding (deterministic); "random" draws from seed_for("exemplar")
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from intsim.core.checks import Rule, check
from intsim.core.rng import SRStream
from intsim.models.calibration import calibrated
from intsim.models.exemplars import ExemplarMemory, class_means, nme_predict
from intsim.models.networks import IncrementalNet
from intsim.models.ties import predict
from intsim.nn import Module
from intsim.nn.optim import SGD, ConstantLR, MultiStepLR
from intsim.nn.training import Diverged, TrainHooks, epoch_batches, run_epoch


@dataclass
class TrainSettings:
    """Optimisation settings shared by every method (paper defaults: docs/method.md)."""
    epochs: int = 100
    lr: float = 0.01
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 2e-4
    milestones: Sequence[int] = field(default_factory=tuple)   # () = constant lr
    lr_gamma: float = 0.1
    augment: bool = False          # CIFAR: random crop 32 (padding 4) + horizontal flip
    exemplar_selection: str = "herding"
    eval_batch_size: Optional[int] = None      # None: batch_size
    eval_order: str = "dataset"                # "dataset" | "class_sorted"
    eval_scale: str = "dynamic"                # "dynamic" | "calibrated"
    feature_batching: str = "task"             # "task" | "per_class"
    feature_batch_size: Optional[int] = None   # None: the evaluation batch size
    keep_single_batch: bool = False            # keep a trailing training batch of one sample
    tie_rule: str = "first"                    # "first" | "topk" (models/ties.py)
    head: str = "bias_normal"                  # "bias_normal" | "nobias_uniform"

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or self.batch_size

    @property
    def feature_batch(self) -> int:
        return self.feature_batch_size or self.eval_batch


@dataclass(frozen=True)
class Option:
    """One method option (config [method_params]): its default and the rule that checks it."""
    default: Any
    rule: Rule


class OptionError(ValueError):
    """A method option of the wrong type or outside its meaning (names the option)."""


class Callbacks:
    """Hooks the runner uses for tracing and progress bars (all optional no-ops)."""

    def step_start(self, learner: "Learner", step: int) -> None:
        pass

    def step_end(self, learner: "Learner", step: int, loss: float) -> None:
        pass

    def epoch_end(self, learner: "Learner", t: int, epoch: int, mean_loss: float) -> None:
        pass

    def stage(self, learner: "Learner", t: int, name: str, epochs: int) -> None:
        """A training stage of task t starts ("train", "bias_correction")."""


def new_batch_stats() -> dict:
    return {"correct": 0, "seen": 0, "batches": 0, "terms": {}}


BackboneFactory = Callable[[int], Module]   # seed -> backbone (has .feature_dim)


class _StepHooks(TrainHooks):
    """The training loop's step hooks, forwarded to a learner's Callbacks."""

    def __init__(self, learner: "Learner", callbacks: Callbacks):
        self.learner, self.callbacks = learner, callbacks

    def step_start(self, step: int) -> None:
        self.callbacks.step_start(self.learner, step)

    def step_end(self, step: int, loss: float) -> None:
        self.callbacks.step_end(self.learner, step, loss)


@contextmanager
def diverged_at(task: int, stage: str, epoch: int):
    """Fill in where a Diverged raised inside the block happened."""
    try:
        yield
    except Diverged as e:
        e.task, e.stage, e.epoch = task, stage, epoch
        raise


def augment_crop_flip(x: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Random crop (zero padding `pad`) back to the input size + random horizontal flip, per
    image, for NCHW batches (CIFAR training augmentation)."""
    B, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dy = rng.integers(0, 2 * pad + 1, size=B)
    dx = rng.integers(0, 2 * pad + 1, size=B)
    flip = rng.random(B) < 0.5
    out = np.empty_like(x)
    for i in range(B):
        img = xp[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W]
        out[i] = img[:, :, ::-1] if flip[i] else img
    return out


class Learner:
    """Base class; see the module docstring. Subclasses set the class attributes below."""

    name = "base"
    uses_memory = True        # exemplars are replayed and updated after every task
    has_nme = False           # evaluate() also returns NME predictions
    uses_teacher = False      # begin_task(t > 0) keeps a frozen copy of the previous model
    OPTIONS: dict[str, Option] = {}    # method options (config [method_params])

    def __init__(self, scenario, backbone_fn: BackboneFactory, numerics,
                 train: Optional[TrainSettings] = None, **options):
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise OptionError(f"{self.name}: unknown method option(s) {unknown}; "
                              f"accepted: {sorted(self.OPTIONS) or 'none'}")
        self.options = {k: o.default for k, o in self.OPTIONS.items()}
        self.options.update({k: check(f"{self.name} option {k!r}", v, self.OPTIONS[k].rule,
                                      OptionError) for k, v in options.items()})
        self.scenario = scenario
        if self.has_nme and scenario.memory_per_class(scenario.n_classes) < 1:
            raise ValueError(
                f"memory: {self.name} classifies by the nearest mean of exemplars, which needs "
                f"at least one exemplar per class; memory {scenario.memory_size} "
                f"({scenario.memory_mode}) leaves none with {scenario.n_classes} classes")
        self.backbone_fn = backbone_fn
        self.numerics = numerics
        self.train_settings = train or TrainSettings()
        self.init_seed = scenario.seed_for("init")
        self.sr_seed = scenario.seed_for("sr")
        self.memory = ExemplarMemory()
        self.teacher: Optional[Module] = None
        self.sr: Optional[SRStream] = None
        self.task = -1                 # index of the task being (or last) trained
        self.step = 0                  # global optimizer step counter (trace stamps)
        self._batch_stats: dict = new_batch_stats()
        #: statistics of the epoch just finished (read by Callbacks.epoch_end): lr,
        #: train_accuracy (% of the training batches, training mode), loss_terms (means)
        self.epoch_stats: dict = {}
        self.model = self.build_model()
        self.model.set_numerics(numerics)

    # ------------------------------------------------------------------ scenario shortcuts
    @property
    def known(self) -> int:
        """Classes learned before the current task."""
        return self.scenario.n_known(self.task)

    @property
    def seen(self) -> int:
        """Classes seen up to and including the current task."""
        return self.scenario.n_seen(self.task)

    # ------------------------------------------------------------------ method hooks
    def build_model(self) -> Module:
        """The model before task 0 (default: backbone + empty growable head)."""
        return IncrementalNet(self.backbone_fn(self.init_seed), 0,
                              head=self.train_settings.head, numerics=self.numerics,
                              seed=self.init_seed)

    def expand(self, t: int) -> None:
        """Structural growth for task t (deterministic; also replayed on resume)."""
        self.model.grow(self.scenario.task_sizes[t])

    def training_set(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """New data of task t plus, for memory methods, the exemplars."""
        X, y = self.scenario.train_task(t)
        if self.uses_memory and len(self.memory):
            Xm, ym = self.memory.data()
            X, y = np.concatenate([X, Xm]), np.concatenate([y, ym])
        return X, y

    def set_train_mode(self) -> None:
        """Called at the start of every epoch (DER/MEMO put frozen parts back in eval)."""
        self.model.train()

    def step_loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward, loss, backward for one mini-batch; returns the loss (gradients accumulate
        in the model)."""
        raise NotImplementedError

    def after_training(self, t: int, callbacks: Callbacks) -> None:
        """After the epochs of task t, before the memory update."""

    def note_batch(self, logits: np.ndarray, y: np.ndarray, **terms: float) -> None:
        """Record one training batch for epoch_stats: correct argmax predictions of `logits`
        (B, classes) against `y`, and the batch's loss terms (e.g. ce=…, kd=…). Read-only:
        it changes nothing the training computes."""
        s = self._batch_stats
        s["correct"] += int(np.sum(np.argmax(logits, axis=1) == y))
        s["seen"] += len(y)
        s["batches"] += 1
        for k, v in terms.items():
            s["terms"][k] = s["terms"].get(k, 0.0) + float(v)

    def end_epoch_stats(self, lr: float) -> dict:
        """Close the epoch's batch statistics into epoch_stats (and start new ones)."""
        s, self._batch_stats = self._batch_stats, new_batch_stats()
        self.epoch_stats = {
            "lr": float(lr),
            "train_accuracy": 100.0 * s["correct"] / s["seen"] if s["seen"] else None,
            "loss_terms": {k: v / s["batches"] for k, v in s["terms"].items()}}
        return self.epoch_stats

    # ------------------------------------------------------------------ the task loop
    def set_sr_stream(self, t: int) -> None:
        self.sr = SRStream(self.sr_seed, f"task{t}")
        self.model.set_rng(self.sr)
        if self.teacher is not None:
            self.teacher.set_rng(self.sr)

    def begin_task(self, t: int) -> None:
        self.task = t
        self.teacher = None
        if self.uses_teacher and t > 0:
            self.teacher = self.model.copy().freeze().eval()
        self.expand(t)
        self.model.set_numerics(self.numerics)
        self.set_sr_stream(t)

    def learn_task(self, t: int, callbacks: Optional[Callbacks] = None) -> None:
        """Train task t completely: begin_task, fit, after_training, memory update."""
        cb = callbacks or Callbacks()
        self.begin_task(t)
        X, y = self.training_set(t)
        self.fit(t, X, y, cb)
        self.after_training(t, cb)
        if self.uses_memory:
            self.update_memory(t)
        self.teacher = None

    def make_optimizer(self, modules, lr: Optional[float] = None):
        s = self.train_settings
        opt = SGD(modules, lr=s.lr if lr is None else lr, momentum=s.momentum,
                  weight_decay=s.weight_decay)
        sched = MultiStepLR(opt, s.milestones, s.lr_gamma) if s.milestones else ConstantLR(opt)
        return opt, sched

    def batches(self, n: int, rng: np.random.Generator):
        """Index arrays of one shuffled epoch; a trailing batch of one sample is dropped
        (BatchNorm needs two) unless keep_single_batch."""
        return epoch_batches(n, self.train_settings.batch_size, rng, min_size=self.min_batch)

    @property
    def min_batch(self) -> int:
        """The smallest training mini-batch kept: 2 (BatchNorm needs two), 1 with
        keep_single_batch."""
        return 1 if self.train_settings.keep_single_batch else 2

    def fit(self, t: int, X: np.ndarray, y: np.ndarray, cb: Callbacks) -> None:
        s = self.train_settings
        opt, sched = self.make_optimizer(self.model)
        shuffle = np.random.default_rng(self.scenario.seed_for(f"shuffle/task{t}"))
        augment = np.random.default_rng(self.scenario.seed_for(f"augment/task{t}"))
        transform = (lambda xb: augment_crop_flip(xb, augment)) if s.augment else None
        hooks = _StepHooks(self, cb)
        cb.stage(self, t, "train", s.epochs)
        for epoch in range(s.epochs):
            self.set_train_mode()
            lr, self._batch_stats = opt.lr, new_batch_stats()
            with diverged_at(t, "train", epoch):
                losses, self.step = run_epoch(self.step_loss, X, y,
                                              self.batches(len(y), shuffle), opt, self.step,
                                              hooks, transform)
            sched.step()
            self.model.clear_cache()
            if self.teacher is not None:
                self.teacher.clear_cache()
            self.end_epoch_stats(lr)
            cb.epoch_end(self, t, epoch, float(np.mean(losses)) if losses else float("nan"))

    # ------------------------------------------------------------------ inference
    def _batched(self, fn, X: np.ndarray, batch: Optional[int] = None) -> np.ndarray:
        B = batch or self.train_settings.eval_batch
        outs = [fn(X[s:s + B]) for s in range(0, len(X), B)]
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Logits of every seen class, model in eval mode (not traced)."""
        self.model.eval()
        out = self._batched(self.model.forward, X)
        self.model.clear_cache()
        return out

    def features(self, X: np.ndarray, batch: Optional[int] = None) -> np.ndarray:
        """Feature vectors (eval mode) as float64, for herding and NME."""
        self.model.eval()
        out = self._batched(self.model.features, X, batch).astype(np.float64)
        self.model.clear_cache()
        return out

    def train_features(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Features of training samples (herding, class means) in batches of feature_batch,
        over all of X ("task") or one class at a time ("per_class"); rows in X's order."""
        s = self.train_settings
        if s.feature_batching == "task":
            return self.features(X, s.feature_batch)
        out = None
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            f = self.features(X[rows], s.feature_batch)
            if out is None:
                out = np.zeros((len(X), f.shape[1]), f.dtype)
            out[rows] = f
        return out if out is not None else self.features(X, s.feature_batch)

    def update_memory(self, t: int) -> None:
        """Reduce old classes to the new per-class budget (herding prefix) and herd the new
        classes on the current features."""
        X, y = self.scenario.train_task(t)
        m = self.scenario.memory_per_class(self.scenario.n_seen(t))
        sel = self.train_settings.exemplar_selection
        seed = self.scenario.seed_for("exemplar") if sel == "random" else None
        self.memory.update(X, y, self.train_features(X, y), m, method=sel, seed=seed)

    def nme_means(self) -> np.ndarray:
        Xm, ym = self.memory.data()
        return class_means(self.train_features(Xm, ym), ym, classes=np.arange(self.seen))

    def calibration_data(self, t: int) -> np.ndarray:
        """Training inputs a fixed activation scale is calibrated on: task t's data and the
        exemplar memory."""
        X, _ = self.scenario.train_task(t)
        if len(self.memory):
            X = np.concatenate([X, self.memory.data()[0]])
        return X

    def evaluate(self, t: int) -> dict[str, np.ndarray]:
        """Predicted labels on scenario.test_upto(t): {"cnn": ..., "nme": ... (has_nme)}, in
        the order of test_upto; computed in the evaluation batching of the module docstring."""
        s = self.train_settings
        X, y = self.scenario.test_upto(t)
        order = (np.argsort(y, kind="stable") if s.eval_order == "class_sorted"
                 else np.arange(len(y)))
        Xo = X[order]
        with calibrated(self.model, self.calibration_data(t) if s.eval_scale == "calibrated"
                        else None, s.eval_batch):
            preds = {"cnn": predict(self.logits(Xo), s.tie_rule)}
            if self.has_nme:
                if len(self.memory):
                    preds["nme"] = nme_predict(self.features(Xo), self.nme_means()).astype(
                        np.int64)
                else:
                    preds["nme"] = np.full(len(X), -1, np.int64)
        out = {}
        for k, p in preds.items():
            back = np.empty_like(p)
            back[order] = p
            out[k] = back
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays of the learner state after a task: model, memory (flat keys)."""
        sd = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        mem = self.memory.state_dict()
        sd["memory/classes"] = np.asarray(mem["classes"], dtype=np.int64)
        for i, (X, idx) in enumerate(zip(mem["X"], mem["index"])):
            sd[f"memory/X/{i}"] = X
            if idx is not None:
                sd[f"memory/index/{i}"] = idx
        return sd

    def meta_state(self) -> dict:
        """JSON-able learner state (task, step counter, SR stream)."""
        return {"task": self.task, "step": self.step,
                "sr_stream": None if self.sr is None else self.sr.state()}

    def load_state(self, arrays: dict, meta: dict) -> None:
        """Rebuild the structure of tasks 0..meta["task"] and load the arrays."""
        t_done = int(meta["task"])
        for k in range(t_done + 1):
            self.task = k
            self.expand(k)
        self.model.set_numerics(self.numerics)
        self.model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items()
                                    if k.startswith("model/")})
        classes = [int(c) for c in arrays["memory/classes"]]
        self.memory = ExemplarMemory.from_state_dict({
            "classes": classes,
            "X": [arrays[f"memory/X/{i}"] for i in range(len(classes))],
            "index": [arrays.get(f"memory/index/{i}") for i in range(len(classes))]})
        self.step = int(meta["step"])
        if meta.get("sr_stream"):
            self.sr = SRStream.from_state(meta["sr_stream"])
            self.model.set_rng(self.sr)

    def set_trace(self, trace) -> None:
        """Attach (or detach with None) a Trace to the student (the teacher is not traced)."""
        self.model.set_trace(trace)

    def describe(self) -> dict:
        return {"method": self.name, "options": dict(self.options),
                "uses_memory": self.uses_memory, "classifiers": ["cnn", "nme"]
                if self.has_nme else ["cnn"], "teacher": self.uses_teacher}
