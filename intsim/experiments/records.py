"""What a run measured: per-task predictions, the metrics derived from them, trace totals.

    Record                per-task labels and predictions of each classifier (checkpointed)
    compute_metrics       metrics.json: AIA, last, forgetting, BWT, accuracy matrix, macro-F1
                          of the CNN classifier (no prefix) and of NME (prefix nme_)
    trace_summary         trace_summary.json: saturation event rate and saturated outputs
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from intsim.core.trace import read_hdf5
from intsim.formats.run_folder import TRACE_GROUP, jsonable, trace_attrs
from intsim.models.metrics import summarize_run


class Record:
    """Per-task labels and predictions of each classifier (the raw material of metrics)."""

    def __init__(self, classifiers: list[str]):
        self.classifiers = list(classifiers)
        self.y_true: list[np.ndarray] = []
        self.preds: dict[str, list[np.ndarray]] = {c: [] for c in self.classifiers}

    def add(self, y_true: np.ndarray, preds: dict[str, np.ndarray]) -> None:
        self.y_true.append(np.asarray(y_true, np.int64))
        for c in self.classifiers:
            self.preds[c].append(np.asarray(preds[c], np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"record/y_true/{t}": y for t, y in enumerate(self.y_true)}
        for c in self.classifiers:
            out.update({f"record/{c}/{t}": p for t, p in enumerate(self.preds[c])})
        return out

    @classmethod
    def from_arrays(cls, classifiers: list[str], arrays: dict, n: int) -> "Record":
        r = cls(classifiers)
        for t in range(n):
            r.add(arrays[f"record/y_true/{t}"],
                  {c: arrays[f"record/{c}/{t}"] for c in classifiers})
        return r


def compute_metrics(record: Record, scenario) -> dict:
    """metrics.json content (percent; NaN -> null). Keys without prefix: CNN classifier."""
    task_ids = [scenario.task_of(y) for y in record.y_true]
    out: dict[str, Any] = {
        "units": "percent", "n_tasks": len(record.y_true), "classifiers": record.classifiers,
        "forgetting_definition": "chaudhry: mean_{j<T-1} max_{l in [j,T-2]} a[l,j] - a[T-1,j]",
        "class_forgetting_definition": "paper code: mean over seen classes of (best per-class "
                                       "accuracy so far - current), after the last task",
    }
    for clf in record.classifiers:
        s = summarize_run(record.y_true, record.preds[clf], task_ids,
                          n_classes=scenario.n_classes)
        p = "" if clf == "cnn" else f"{clf}_"
        out.update({
            f"{p}aia": s["aia"], f"{p}last": s["last"], f"{p}forgetting": s["forgetting"],
            f"{p}bwt": s["bwt"], f"{p}acc_matrix": s["matrix"],
            f"{p}accuracy_curve": s["A"], f"{p}class_forgetting": s["class_forgetting"],
            f"{p}macro_f1": s["last_macro_f1"], f"{p}macro_f1_curve": s["macro_f1"],
        })
    return jsonable(out)


def trace_summary(path: Path) -> dict:
    """Totals over trace.h5: saturation event rate (events per accumulation opportunity: per
    tile for clamp_tile, per MAC otherwise), fraction of saturated outputs, per layer."""
    out: dict[str, Any] = {"records": 0, "event_rate": None, "saturated_output_fraction": None,
                           "layers": []}
    if not path.exists():
        return out
    attrs = trace_attrs(path)
    out["numerics"] = str(attrs.get("numerics", ""))
    out["quantized"] = bool(attrs.get("quantized", False))
    df = read_hdf5(str(path), TRACE_GROUP, "matmul")
    if df.empty:
        return out
    opp = np.where(df["mode"] == "clamp_tile", df["tiles"], df["macs"]).astype(np.float64)
    df = df.assign(opportunities=opp)
    out["records"] = int(len(df))
    out["event_rate"] = float(df["events"].sum() / max(opp.sum(), 1.0))
    out["saturated_output_fraction"] = float(df["outputs_affected"].sum()
                                             / max(float(df["outputs"].sum()), 1.0))
    for label, g in df.groupby("label", sort=True):
        out["layers"].append({
            "label": label, "records": int(len(g)), "events": int(g["events"].sum()),
            "event_rate": float(g["events"].sum() / max(g["opportunities"].sum(), 1.0)),
            "saturated_output_fraction": float(g["outputs_affected"].sum()
                                               / max(float(g["outputs"].sum()), 1.0)),
            "max_abs_total": float(g["max_abs_total"].max())})
    return out


def mean_std(values) -> str:
    """'m ± s' (sample std) of the values (None counts as missing), 'm' for one value,
    '—' for none."""
    v = np.array([np.nan if x is None else x for x in values], dtype=float)
    if len(v) == 0 or np.all(np.isnan(v)):
        return "—"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}"


def evaluation_text(settings) -> str:
    """How a run evaluated, for results tables: "batch 128, class_sorted, dynamic" (the
    evaluation batch, the test order, the activation scales; settings of config.json)."""
    get = settings.get
    return (f"batch {get('eval_batch_size') or get('batch_size')}, "
            f"{get('eval_order') or 'dataset'}, {get('eval_scale') or 'dynamic'}")
