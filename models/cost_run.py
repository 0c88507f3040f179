"""The cost of a class-incremental run, task by task: what `intsim cil` writes to cost.json.

    rec = RunCostRecorder()
    rec.task_start(learner, t)      # when task t's training starts (model grown, teacher set)
    rec.task_end(learner, t)        # after its memory update and evaluation
    doc = run_cost_doc(rec.tasks, table, numerics_name)

task_start books the task's training: for every distinct mini-batch size of an epoch (batch
sizes: intsim.nn.training.epoch_batch_sizes of the training set, a trailing batch smaller than
Learner.min_batch dropped), one training step walked on float copies (models.cost_walk), times
the epochs and the batches of that size; plus the reads of the training set per epoch (the
exemplars from the exemplar memory, the rest as inputs). task_end books what else the task
did: feature extraction (feature_batching, feature_batch) and herding of the new classes'
exemplars (their writes into the exemplar memory), BiC's validation logits and stage-2 steps,
the test-set logits (eval_batch; under eval_scale "calibrated" first the calibration passes,
then fixed activation scales), and for NME the features of the test data and of the
exemplars, the class means and the distances.
Every ledger is also booked with fp32 numerics, so each cost has its float32 reference.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from intsim.core.costs import FP32, Counts, Traffic
from intsim.core.energy import EnergyTable
from intsim.core.ledger import Ledger
from intsim.core.modes import CostPart, TensorClass
from intsim.models.cost_walk import (calibrated_numerics, chunked_forward, herding_counts,
                                     nme_counts, step_ledgers)
from intsim.nn.costs import ADD, MUL, loss_counts, sgd_counts
from intsim.nn.training import epoch_batch_sizes

COST_FORMAT, COST_VERSION = "intsim-cost", 1


@dataclass
class TaskCost:
    """What one task cost: its training steps and everything else, each with its fp32
    reference."""
    task: int
    epochs: int
    batch_sizes: list             # the mini-batch sizes of one epoch
    train: Ledger
    train_fp32: Ledger
    other: Ledger = field(default_factory=Ledger)
    other_fp32: Ledger = field(default_factory=Ledger)
    unknown: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.epochs * len(self.batch_sizes)


def _both(pair_target: tuple, real: Ledger, ref: Ledger, times: int = 1) -> None:
    pair_target[0].merge(real, times)
    pair_target[1].merge(ref, times)


def _book(pair_target: tuple, scope: tuple, counts=None, traffic=()) -> None:
    for ledger in pair_target:
        ledger.add(scope, counts, traffic)


def _train_features(learner, X, y, role: str, both: tuple,
                    cls: TensorClass = TensorClass.INPUTS, remap=None) -> int:
    """Book Learner.train_features(X, y): feature passes in batches of feature_batch over all
    of X ("task") or one class at a time ("per_class"); returns the feature width."""
    s = learner.train_settings
    parts = ([X[y == c] for c in np.unique(y)] if s.feature_batching == "per_class" else [X])
    d = 0
    for part in parts:
        real, ref, d = chunked_forward(learner.model, part, s.feature_batch, role, "features",
                                       cls, remap)
        _both(both, real, ref)
    return d


class RunCostRecorder:
    """Books a run task by task (module docstring); `tasks` maps task -> TaskCost."""

    def __init__(self):
        self.tasks: dict[int, TaskCost] = {}
        self._current = None

    def task_start(self, learner, t: int) -> None:
        X, y = learner.training_set(t)
        s = learner.train_settings
        sizes = epoch_batch_sizes(len(y), s.batch_size, learner.min_batch)
        tc = TaskCost(t, s.epochs, sizes, Ledger(), Ledger())
        both = (tc.train, tc.train_fp32)
        for size in sorted(set(sizes)):
            real, ref, unknown = step_ledgers(learner, X[:size], y[:size], inputs=False)
            _both(both, real, ref, sizes.count(size) * s.epochs)
            tc.unknown += unknown
        n_mem = min(len(learner.memory), len(y)) if learner.uses_memory else 0
        row = int(np.prod(X.shape[1:]))
        _book(both, ("student", "input", "epoch"), traffic=[
            Traffic("x", TensorClass.INPUTS, (len(y) - n_mem) * row, FP32, s.epochs),
            Traffic("exemplars", TensorClass.EXEMPLARS, n_mem * row, FP32, s.epochs)])
        self._current = tc

    def task_end(self, learner, t: int) -> None:
        tc = self._current if self._current is not None and self._current.task == t else \
            TaskCost(t, 0, [], Ledger(), Ledger())
        both = (tc.other, tc.other_fp32)
        s, sc = learner.train_settings, learner.scenario
        E = s.eval_batch
        if learner.uses_memory:
            self._herding(learner, t, both)
        if learner.name == "bic" and t > 0 and getattr(learner, "val", None) is not None:
            self._bic_stage2(learner, both, E)
        remap = None
        if s.eval_scale == "calibrated":         # calibration passes, then fixed scales
            _both(both, *chunked_forward(learner.model, learner.calibration_data(t), E,
                                         "calibration")[:2])
            remap = calibrated_numerics
        Xt, _ = sc.test_upto(t)
        _both(both, *chunked_forward(learner.model, Xt, E, "test", remap=remap)[:2])
        if learner.has_nme and len(learner.memory):
            real, ref, d = chunked_forward(learner.model, Xt, E, "nme_test", "features",
                                           remap=remap)
            _both(both, real, ref)
            Xm, ym = learner.memory.data()
            _train_features(learner, Xm, ym, "nme_memory", both, TensorClass.EXEMPLARS, remap)
            _book(both, ("nme", "exemplars", "nme"), nme_counts(len(Xt), sc.n_seen(t), d,
                                                                 len(Xm)))
        self.tasks[t] = tc
        self._current = None

    @staticmethod
    def _herding(learner, t: int, both: tuple) -> None:
        sc = learner.scenario
        X, y = sc.train_task(t)
        d = _train_features(learner, X, y, "herding", both)
        m = sc.memory_per_class(sc.n_seen(t))
        c = Counts()
        for cls in np.unique(y):
            c.merge(herding_counts(int(np.sum(y == cls)), d, m))
        row = int(np.prod(X.shape[1:]))
        kept = sum(n for cls, n in learner.memory.counts().items() if cls >= sc.task_start(t))
        _book(both, ("herding", "exemplars", "herding"), c,
              [Traffic("exemplars", TensorClass.EXEMPLARS, kept * row, FP32, 0, 1)])

    @staticmethod
    def _bic_stage2(learner, both: tuple, E: int) -> None:
        """BiC stage 2: validation logits once, then epochs of bias-layer steps (float)."""
        Xv, yv = learner.val
        if not len(yv):
            return
        _both(both, *chunked_forward(learner.model.net, Xv, E, "bic_val")[:2])
        s = learner.train_settings
        newest = learner.model.bias_layers()[-1]
        cols, C = newest.hi - newest.lo, learner.seen
        step = Counts()
        for b in epoch_batch_sizes(len(yv), s.batch_size, learner.min_batch):
            step.add(CostPart.LAYER, MUL, 3 * b * cols).add(CostPart.LAYER, ADD, 3 * b * cols)
            step.merge(loss_counts("cross_entropy", b, C))
            step.merge(sgd_counts(2, s.momentum, s.weight_decay)[0])
        _book(both, ("bic_stage2", "bias_layer", "train"), Counts().merge(step, s.epochs))


LEDGERS = ("train", "train_fp32", "other", "other_fp32")


def _summary(ledger: Ledger, table: EnergyTable) -> dict:
    return ledger.totals(table)


def _canonical(ledger: Ledger) -> Ledger:
    """The ledger in the form cost.json stores it (counts by (part, op), bytes moved by tensor
    class, both sorted): priced, it gives the same float sums whether the task ran in this
    process or was restored from cost.json by a resume, so a resumed run's cost (and
    metrics.json, which repeats it) is byte-identical to an uninterrupted run's."""
    doc = ledger.to_doc()
    doc["bytes_moved"] = dict(sorted(doc["bytes_moved"].items()))
    return Ledger.from_doc(doc)


def tasks_from_doc(doc: dict) -> dict:
    """The TaskCosts stored in a cost.json document (totals only; for a resumed run)."""
    out = {}
    for e in doc.get("tasks", []):
        sizes = [int(b) for b, n in e["batch_sizes"].items() for _ in range(n)]
        led = {k: Ledger.from_doc(e["ledgers"][k]) for k in LEDGERS}
        out[int(e["task"])] = TaskCost(int(e["task"]), int(e["epochs"]), sizes,
                                       led["train"], led["train_fp32"], led["other"],
                                       led["other_fp32"], list(e["unmodelled_modules"]))
    return out


def counts_doc(ledger: Ledger) -> list[dict]:
    """The total counts of a ledger by (part, op), enough to price it with another table."""
    out = []
    for (part, op), n in sorted(ledger.total_counts().items(),
                                key=lambda kv: (str(kv[0][0]), kv[0][1].key)):
        out.append({"part": str(part), "op": op.key, "kind": str(op.kind), "bits": op.bits,
                    "bits2": op.bits2, "signs": op.signs, "count": n})
    return out


#: the headline figures of cost.json that metrics.json repeats under "cost"
HEADLINE = ("energy_pj_step", "energy_pj_epoch", "energy_pj_run", "energy_rel_fp32",
            "energy_compute_rel_fp32", "steps", "complete")


def cost_headline(doc: dict) -> dict:
    """metrics.json's "cost" entry: HEADLINE of the cost.json document `doc`, the energy
    table's name and where the details are."""
    return {**{k: doc[k] for k in HEADLINE}, "energy_table": doc["energy_table"]["name"],
            "details": "cost.json"}


def run_cost_doc(tasks: dict, table: EnergyTable, numerics_name: str,
                 complete: bool = True) -> dict:
    """The cost.json document of a run from its TaskCosts (module docstring)."""
    train, train32, run, run32 = Ledger(), Ledger(), Ledger(), Ledger()
    per_task = []
    steps = epochs = 0
    for t in sorted(tasks):
        tc = dataclasses.replace(tasks[t], **{k: _canonical(getattr(tasks[t], k))
                                              for k in LEDGERS})
        train.merge(tc.train)
        train32.merge(tc.train_fp32)
        run.merge(tc.train).merge(tc.other)
        run32.merge(tc.train_fp32).merge(tc.other_fp32)
        steps += tc.steps
        epochs += tc.epochs
        per_task.append({"task": t, "epochs": tc.epochs, "steps": tc.steps,
                         "batch_sizes": {str(b): tc.batch_sizes.count(b)
                                         for b in sorted(set(tc.batch_sizes))},
                         "train": _summary(tc.train, table),
                         "other": _summary(tc.other, table),
                         "train_fp32_pj": tc.train_fp32.totals(table)["pj"],
                         "unmodelled_modules": tc.unknown,
                         "ledgers": {k: getattr(tc, k).to_doc() for k in LEDGERS}})
    tot, tot32 = run.totals(table), run32.totals(table)
    tr = train.totals(table)
    step_pj = tr["pj"] / steps if steps else None
    return {
        "format": COST_FORMAT, "format_version": COST_VERSION, "complete": complete,
        "numerics": numerics_name,
        "energy_table": {"name": table.name, "source": table.source},
        "energy_pj_step": step_pj,
        "energy_pj_epoch": tr["pj"] / epochs if epochs else None,
        "energy_pj_run": tot["pj"],
        "energy_rel_fp32": tot["pj"] / tot32["pj"] if tot32["pj"] else None,
        "energy_compute_rel_fp32": (tot["compute_pj"] / tot32["compute_pj"]
                                    if tot32["compute_pj"] else None),
        "steps": steps, "epochs": epochs,
        "run": tot, "train": tr,
        "fp32": {"energy_pj_run": tot32["pj"],
                 "energy_pj_step": train32.totals(table)["pj"] / steps if steps else None},
        "counts": counts_doc(run),
        "tasks": per_task,
        "notes": "pJ from the energy table above; counts and traffic by the rules of "
                 "intsim.core.costs, intsim.nn.costs, intsim.models.cost_walk; per step = "
                 "training steps only (mean over the run); run = training + herding + "
                 "evaluation passes; fp32 = the same run with float32 numerics",
    }
