"""The sweep's tables: one results row per cell, a summary per configuration (mean ± std).

results.parquet (or results.csv without pyarrow) keeps every grid field, the cell's status and
every scalar metric, with the same dtypes however it is read back (read_results).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import pandas as pd

from intsim.formats.atomic import atomic_path
from intsim.models.metrics import aggregate_seeds

#: scalar columns of results / summary (metrics.json, then trace_summary.json, cost.json)
SCALAR_METRICS = ("aia", "last", "forgetting", "bwt", "class_forgetting", "macro_f1",
                  "nme_aia", "nme_last", "nme_forgetting", "nme_bwt", "nme_class_forgetting",
                  "nme_macro_f1", "event_rate", "saturated_output_fraction")
#: energy columns from the cell's cost.json: pJ per training step and per whole run, the run's
#: energy and its compute energy (memory traffic left out) relative to the same run in fp32
COST_METRICS = ("energy_pj_step", "energy_pj_run", "energy_rel_fp32", "energy_compute_rel_fp32")
SCALAR_METRICS = SCALAR_METRICS + COST_METRICS
#: per-task curves kept as JSON text columns (<name>_json)
CURVES = ("accuracy_curve", "nme_accuracy_curve")
#: results columns after the grid fields
STATUS_COLUMNS = ("status", "error", "numerics_name", "evaluation", "reused",
                  "resumed_from_task", "seconds", "worker", "dir")


def _normalize(values: Sequence) -> Any:
    """A column of grid-field values with a stable dtype: nullable Int64 for integers, float
    for numbers, strings otherwise (None stays missing)."""
    vals = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v
            for v in values]
    present = [v for v in vals if v is not None]
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                       for v in present):
        return pd.array(vals, dtype="Int64")
    if present and all(isinstance(v, (int, float, np.integer, np.floating))
                       and not isinstance(v, (bool, np.bool_)) for v in present):
        return pd.array([np.nan if v is None else float(v) for v in vals], dtype="float64")
    return pd.array([None if v is None else str(v) for v in vals], dtype="object")


TEXT_COLUMNS = ("cell", "group", "status", "error", "numerics_name", "evaluation", "worker", "dir",
                *(f"{k}_json" for k in CURVES))


def _missing(v) -> bool:
    return v is None or (not isinstance(v, (list, dict, str)) and bool(pd.isna(v)))


def _set_dtypes(df, field_names: Sequence[str]):
    """Stable dtypes whatever the source (rows, CSV, parquet): grid fields via _normalize, text
    columns object (None = missing), metrics float64, resumed_from_task Int64, reused bool."""
    for c in field_names:
        vals = [None if _missing(v) else v for v in df[c].tolist()]
        if all(isinstance(v, (float, np.floating)) and float(v).is_integer()
               for v in vals if v is not None) and any(v is not None for v in vals) \
                and df[c].dtype.kind == "f":
            vals = [None if v is None else int(v) for v in vals]   # CSV turned Int64 to float
        df[c] = _normalize(vals)
    for c in TEXT_COLUMNS:
        df[c] = pd.array([None if _missing(v) else str(v) for v in df[c].tolist()],
                         dtype="object")
    for c in SCALAR_METRICS + ("seconds",):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["resumed_from_task"] = pd.array([None if _missing(v) else int(v)
                                        for v in df["resumed_from_task"].tolist()],
                                       dtype="Int64")
    df["reused"] = pd.array([bool(v) if not _missing(v) else False
                             for v in df["reused"].tolist()], dtype=bool)
    return df


def results_frame(rows: list[dict], field_names: Sequence[str]):
    """The results table (one row per cell) with a fixed column order: cell, group, the grid
    fields (seed last), status columns, scalar metrics, curve JSON columns."""
    cols = ["cell", "group", *field_names, *STATUS_COLUMNS, *SCALAR_METRICS,
            *(f"{k}_json" for k in CURVES)]
    df = pd.DataFrame({c: (_normalize([r.get(c) for r in rows]) if c in field_names
                           else pd.array([r.get(c) for r in rows], dtype="object"))
                       for c in cols})
    return _set_dtypes(df, [])


def parquet_available() -> bool:
    """pyarrow installed (results.parquet); else results.csv."""
    return importlib.util.find_spec("pyarrow") is not None


def write_results(df, out: Union[str, os.PathLike]) -> Path:
    """results.parquet (pyarrow) or results.csv in `out`; removes the other format's stale
    file. Returns the path written."""
    out = Path(out)
    use_parquet = parquet_available()
    path = out / ("results.parquet" if use_parquet else "results.csv")
    with atomic_path(os.fspath(path)) as tmp:
        if use_parquet:
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    other = out / ("results.csv" if use_parquet else "results.parquet")
    other.unlink(missing_ok=True)
    return path


def field_columns(df) -> list[str]:
    """The grid-field columns of a results table (between 'group' and 'status')."""
    cols = list(df.columns)
    return cols[cols.index("group") + 1: cols.index("status")]


def read_results(path: Union[str, os.PathLike]):
    """A results table written by write_results (a file or the sweep folder), with the same
    dtypes as the table that was written (integer-valued float fields of a CSV come back as
    integers)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.parquet" if (p / "results.parquet").exists() else p / "results.csv"
    if p.suffix == ".parquet":
        df = pd.read_parquet(p)
    else:
        df = pd.read_csv(p, keep_default_na=False, na_values=[""], dtype=object)
        for c in df.columns:          # CSV gives text: numbers back to numbers
            if c in TEXT_COLUMNS:
                continue
            num = pd.to_numeric(df[c], errors="coerce")
            if num.notna().sum() == df[c].notna().sum():
                df[c] = num
        df["reused"] = [str(v) == "True" for v in df["reused"]]
    return _set_dtypes(df, field_columns(df))


def summarize(results):
    """Per configuration (the cell's group: every field but the seed): n_seeds (successful
    runs), n_failed (errors), n_diverged (runs whose training diverged), seeds, and
    <metric>_mean / <metric>_std over the successful seeds
    (aggregate_seeds, sample std; NaN with one seed or when a seed's value is missing), plus
    the mean per-task curve as JSON (accuracy_curve_mean_json)."""
    fields = [c for c in field_columns(results) if c != "seed"]
    out = []
    for group, g in results.groupby("group", sort=False):
        ok = g[g["status"] == "ok"]
        rec = {"group": group, **{c: g[c].iloc[0] for c in fields},
               "n_seeds": int(len(ok)),
               "n_failed": int(len(g) - len(ok) - (g["status"] == "diverged").sum()),
               "n_diverged": int((g["status"] == "diverged").sum()),
               "evaluation": " / ".join(sorted(set(ok["evaluation"].dropna()))) or None,
               "seeds": " ".join(str(int(s)) for s in ok["seed"])}
        for m in SCALAR_METRICS:
            if len(ok) and ok[m].notna().any():
                s = aggregate_seeds(ok[m].to_numpy(dtype=float))
                rec[f"{m}_mean"], rec[f"{m}_std"] = s.mean, s.std
            else:
                rec[f"{m}_mean"], rec[f"{m}_std"] = np.nan, np.nan
        for k in CURVES:
            curves = [json.loads(x) for x in ok[f"{k}_json"] if isinstance(x, str)]
            if curves and len(curves) == len(ok) and len({len(c) for c in curves}) == 1:
                a = np.array([[np.nan if v is None else v for v in c] for c in curves], float)
                rec[f"{k}_mean_json"] = json.dumps(
                    [None if not np.isfinite(v) else float(v) for v in a.mean(axis=0)])
            else:
                rec[f"{k}_mean_json"] = None
        out.append(rec)
    df = pd.DataFrame(out)
    for c in fields:
        df[c] = _normalize([None if pd.isna(r[c]) else r[c] for r in out])
    return df


def config_label(rec, fields: Sequence[str]) -> str:
    """'hdqt acc_bits=8 tile=32' from a results/summary row (dataset and method left out)."""
    parts = [str(rec["numerics"])]
    for c in fields:
        if c in ("dataset", "method", "numerics", "seed"):
            continue
        v = rec[c]
        if v is not None and not pd.isna(v):
            parts.append(f"{c}={v}")
    return " ".join(parts)


TABLE_COLUMNS = (("AIA", "aia"), ("last", "last"), ("forgetting", "forgetting"),
                 ("NME AIA", "nme_aia"), ("NME last", "nme_last"))


def format_summary(summary) -> str:
    """A plain-text table of the summary (mean ± std over seeds)."""
    fields = [c for c in summary.columns[1:summary.columns.get_loc("n_seeds")]]

    def ms(rec, m):
        mean, sd = rec[f"{m}_mean"], rec[f"{m}_std"]
        if pd.isna(mean):
            return "—"
        return f"{mean:.2f}" if pd.isna(sd) else f"{mean:.2f} ± {sd:.2f}"
    head = ["dataset", "method", "numerics", "evaluation", "seeds",
            *(c for c, _ in TABLE_COLUMNS), "sat.events/op", "energy×fp32", "failed",
            "diverged"]
    body = []
    for _, r in summary.iterrows():
        ev, en = r["event_rate_mean"], r["energy_rel_fp32_mean"]
        body.append([str(r["dataset"]), str(r["method"]), config_label(r, fields),
                     str(r.get("evaluation") or "—"), str(r["n_seeds"]),
                     *(ms(r, m) for _, m in TABLE_COLUMNS),
                     "—" if pd.isna(ev) else f"{ev:.2e}", "—" if pd.isna(en) else f"{en:.3f}",
                     str(r["n_failed"]), str(r.get("n_diverged", 0))])
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells):
        return " | ".join(f"{c:<{w}}" if i < 4 else f"{c:>{w}}"
                          for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), "-" * len(line(head))] + [line(b) for b in body])


