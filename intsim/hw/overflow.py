"""Overflow report: how close every accumulator came to its limits during training.

    report(["runs/hdqt", "runs/hdqt_paper/trace.h5"], out_dir="overflow/")

reads the matmul records of a trace (intsim.Trace.to_hdf5, group "trace/matmul") — a trace.h5
file, a run folder holding one, or a golden / vectors file (`intsim golden`, `intsim vectors`:
the records of its own matmuls, so registers are sized for the user's layers and operands) —
and, per layer and matmul kind (fwd, grad_in, grad_w):

  event_rate      saturation/wrap events per MAC (saturate, wrap) or clamped tiles per tile
                  (clamp_tile) over all traced calls (NUMERICS.md §4.1), and per step
  saturated_output_fraction  outputs with at least one event / outputs (comparable across
                  modes)
  hist            log2 histogram of the exact tile partial sums (bin j: |sum| has bit length j)
  max_abs_prefix  largest exact running sum inside a tile; max_abs_partial: largest tile sum
  bound           the A2Q-style worst case tile·max|a|·max|b| from the operand bit widths
                  (a Hadamard-transformed operand reused without requantization grows by ·p)
  min_acc_bits    the narrowest symmetric register that would have had no event:
                  bit_length(max_abs_prefix) + 1 for per-MAC registers (saturate, wrap, exact),
                  bit_length(max_abs_partial) + 1 for clamp_tile
  bound_acc_bits  bit_length(bound) + 1: the width that makes an event impossible

and writes overflow_summary.csv, overflow_steps.csv, overflow_hist.csv and overflow.png (runs
side by side: histograms, event rate over training, observed vs worst-case widths). A trace
with a per-event log (`--events N`) adds overflow_events.csv (the outputs, columns, k positions,
tiles and event kinds that saturate most, per layer and kind) and overflow_events.png (heat maps
of events over k and the output column; intsim.hw.overflow_events).

Operand widths come from the run's datapath: config.json ("datapath" TOML text, or the
"numerics_spec" / "settings.numerics" of an `intsim cil` run), else the trace file's
"datapath" attribute, else the bits of the trace's quantize records (symmetric codes
assumed).

`intsim.hw.overflow_train.trace_training_run(numerics, out_dir, epochs, seed)` produces such
a run: FCNet on the real smartwatch data (intsim.datasets "watch", 7 classes, train-only
min-max scaling), every training step traced. The figure is drawn by intsim.hw.overflow_plot.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

import pandas as pd

from intsim.core.hadamard import rule_block_size
from intsim.core.modes import PRODUCTS, MatmulKind, split_label
from intsim.core.numerics import Numerics, from_mapping, loads
from intsim.core.presets import preset
from intsim.core.ranges import bit_width, code_range, log2_top, max_abs, product_operand_ranges
from intsim.core.trace import read_events, read_hdf5
from intsim.formats.atomic import atomic_path
from intsim.formats.golden_file import open_hdf5
from intsim.hw.overflow_events import event_table, plot_events
from intsim.hw.overflow_plot import plot_report

KINDS = MatmulKind.values()
SUMMARY_COLUMNS = ("run", "layer", "kind", "mode", "acc_bits", "tile", "K", "calls", "macs",
                   "events", "event_rate", "saturated_output_fraction", "tiles_affected",
                   "tile_sum_events",
                   "max_abs_partial", "max_abs_prefix", "max_a", "max_b", "bound",
                   "observed_over_bound", "min_acc_bits", "bound_acc_bits", "operand_source")


@dataclass
class RunData:
    """One trace: its matmul and quantize records and (if known) its numerics."""
    name: str
    trace_path: str
    matmul: object                       # pandas DataFrame
    quantize: object                     # pandas DataFrame
    numerics: Optional[Numerics] = None
    numerics_source: str = ""
    meta: dict = field(default_factory=dict)
    events: object = None                # pandas DataFrame of the per-event log (or empty)

    @property
    def logged(self) -> tuple[int, int]:
        """(events logged, events counted) of the run's matmuls."""
        total = int(self.matmul["events"].sum() + self.matmul["tile_sum_events"].sum())
        return (0 if self.events is None else len(self.events)), total


def _numerics_from_config(cfg: dict) -> tuple[Optional[Numerics], str]:
    if isinstance(cfg.get("datapath"), str):
        return loads(cfg["datapath"]).numerics, "config.json datapath"
    spec = cfg.get("numerics_spec")
    if isinstance(spec, dict):
        try:
            return from_mapping(spec, check=False).numerics, "config.json numerics_spec"
        except ValueError:
            pass
    name = (cfg.get("settings") or {}).get("numerics") if isinstance(cfg.get("settings"),
                                                                     dict) else None
    if isinstance(name, str):
        try:
            return preset(name), f"config.json settings.numerics = {name}"
        except ValueError:
            pass
    return None, ""


def load_run(source: Union[str, os.PathLike], name: Optional[str] = None) -> RunData:
    """Read a trace.h5 (or a run folder containing one) and the run's numerics if known."""
    source = os.fspath(source)
    if os.path.isdir(source):
        trace_path = os.path.join(source, "trace.h5")
        run_dir = source
    else:
        trace_path, run_dir = source, os.path.dirname(os.path.abspath(source))
    if not os.path.exists(trace_path):
        raise FileNotFoundError(f"overflow-report: no trace file at {trace_path}")
    if name is None:
        base = os.path.basename(os.path.normpath(source))
        name = base if os.path.isdir(source) else (
            os.path.basename(run_dir) if base == "trace.h5" else os.path.splitext(base)[0])
    numerics, how, meta = None, "", {}
    cfg_path = os.path.join(run_dir, "config.json")
    if os.path.exists(cfg_path):
        try:
            with open(cfg_path, encoding="utf-8") as f:
                cfg = json.load(f)
            numerics, how = _numerics_from_config(cfg)
        except (OSError, json.JSONDecodeError, ValueError):
            pass
    with open_hdf5(trace_path, "overflow-report") as f:
        for k, v in f.attrs.items():
            meta[k] = v.decode() if isinstance(v, bytes) else v
        if numerics is None and isinstance(meta.get("datapath"), str):
            try:
                numerics, how = loads(meta["datapath"]).numerics, "trace.h5 datapath attribute"
            except ValueError:
                pass
    mm = read_hdf5(trace_path, "trace", "matmul")
    qq = read_hdf5(trace_path, "trace", "quantize")
    if not len(mm):
        if meta.get("format") == "intsim-golden":
            raise ValueError(f"overflow-report: {trace_path} is a golden file without a trace "
                             f"(format version {meta.get('format_version')}); write it again "
                             "with this intsim (`intsim golden` / `intsim vectors`)")
        raise ValueError(f"overflow-report: {trace_path} holds no integer-matmul records "
                         "(group trace/matmul is absent or empty: an fp32 run, tracing off, or "
                         "not a trace file)")
    if meta.get("format") == "intsim-golden":
        how = how or "golden file datapath attribute"
    return RunData(name, trace_path, mm, qq, numerics, how or "trace quantize records", meta,
                   read_events(trace_path))


def _split_label(label: str) -> tuple[str, str]:
    layer, kind, letter = split_label(label)
    return (layer, str(kind)) if kind is not None and letter is None else (label, "")


def _operand_max_from_numerics(nm: Numerics, kind: str, K: int) -> tuple[Optional[int],
                                                                        Optional[int]]:
    """max|left|, max|right| of one product's codes; a reused forward operand grown by its
    Hadamard transform along the reduction axis of length K."""
    left, right = product_operand_ranges(nm, kind, rule_block_size(K, nm.hadamard))
    return max_abs(left), max_abs(right)


def _operand_max_from_records(quant, layer: str, kind: str) -> tuple[Optional[int],
                                                                    Optional[int], bool]:
    """(max|left|, max|right|, guessed) from the quantize records' bits/signed columns."""
    if quant is None or len(quant) == 0:
        return None, None, True

    def qmax(label):
        rows = quant[quant["label"] == label]
        if not len(rows):
            return None
        out = 0
        for bits, signed, rounding in zip(rows["bits"], rows["signed"], rows["rounding"]):
            bits = int(bits)
            if rounding == "log2_stochastic":
                out = max(out, log2_top(bits))
            else:
                lo, hi = code_range(bits, bool(signed), True)
                out = max(out, abs(lo), hi)
        return out
    lt, rt = PRODUCTS[kind].left.letter, PRODUCTS[kind].right.letter
    left = qmax(f"{layer}/{kind}/{lt}")
    right = qmax(f"{layer}/{kind}/{rt}")
    guessed = False
    if right is None and kind != "fwd":          # reused forward codes (Hadamard growth ×p
        right = qmax(f"{layer}/fwd/{rt}")          # unknown here: not included)
        guessed = True
    return left, right, guessed


def summarize(run: RunData):
    """Per (layer, kind) table of the module docstring (pandas DataFrame)."""
    df = run.matmul
    rows = []
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    for label, g in df.groupby("label", sort=False):
        layer, kind = _split_label(str(label))
        mode = str(g["mode"].iloc[0])
        acc_bits = int(g["bits"].iloc[0])
        Ks = g["K"].to_numpy(np.int64)
        tiles = np.minimum(g["tile"].to_numpy(np.int64), Ks)
        if run.numerics is not None and kind:
            src = "datapath"
            bounds, ma, mb = [], 0, 0
            for K, T in zip(Ks, tiles):
                a, b = _operand_max_from_numerics(run.numerics, kind, int(K))
                if a is None or b is None:
                    bounds = []
                    break
                ma, mb = max(ma, a), max(mb, b)
                bounds.append(int(T) * a * b)
            bound = max(bounds) if bounds else None
        else:
            a, b, guessed = _operand_max_from_records(run.quantize, layer, kind)
            src = "quantize records" + (" (reused forward codes, no Hadamard growth)"
                                        if guessed else "")
            ma, mb = a, b
            bound = int(tiles.max()) * a * b if a is not None and b is not None else None
        macs, n_tiles = int(g["macs"].sum()), int(g["tiles"].sum())
        events = int(g["events"].sum())
        per = n_tiles if mode == "clamp_tile" else macs
        mx_part, mx_pre = int(g["max_abs_partial"].max()), int(g["max_abs_prefix"].max())
        observed = mx_part if mode == "clamp_tile" else mx_pre
        rows.append(dict(
            run=run.name, layer=layer, kind=kind or "?", mode=mode, acc_bits=acc_bits,
            tile=int(tiles.max()), K=int(Ks.max()), calls=len(g), macs=macs, events=events,
            event_rate=events / per if per else 0.0,
            saturated_output_fraction=(int(g["outputs_affected"].sum()) / int(g["outputs"].sum())
                                       if int(g["outputs"].sum()) else 0.0),
            tiles_affected=int(g["tiles_affected"].sum()),
            tile_sum_events=int(g["tile_sum_events"].sum()),
            max_abs_partial=mx_part, max_abs_prefix=mx_pre,
            max_a=ma if ma is not None else np.nan, max_b=mb if mb is not None else np.nan,
            bound=bound if bound is not None else np.nan,
            observed_over_bound=observed / bound if bound else np.nan,
            min_acc_bits=bit_width(observed),
            bound_acc_bits=bit_width(bound) if bound is not None else np.nan,
            operand_source=src))
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    kinds = {k: i for i, k in enumerate(KINDS)}
    layers = {lay: i for i, lay in enumerate(dict.fromkeys(out["layer"]))}   # first seen
    key = lambda s: s.map(kinds if s.name == "kind" else layers)             # noqa: E731
    return out.sort_values(["kind", "layer"], key=key, kind="stable").reset_index(drop=True)


def per_step(run: RunData):
    """Event rate per (layer, kind, step)."""
    df = run.matmul
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=["run", "layer", "kind", "step", "events", "event_rate",
                                     "saturated_output_fraction"])
    rows = []
    for (label, step), g in df.groupby(["label", "step"], sort=True):
        layer, kind = _split_label(str(label))
        mode = str(g["mode"].iloc[0])
        per = int(g["tiles"].sum()) if mode == "clamp_tile" else int(g["macs"].sum())
        ev = int(g["events"].sum())
        outs = int(g["outputs"].sum())
        rows.append(dict(run=run.name, layer=layer, kind=kind, step=int(step), events=ev,
                         event_rate=ev / per if per else 0.0,
                         saturated_output_fraction=(int(g["outputs_affected"].sum()) / outs
                                                    if outs else 0.0)))
    return pd.DataFrame(rows)


def histograms(run: RunData):
    """Summed log2 histogram of tile partial sums per (layer, kind): long table."""
    df = run.matmul
    rows = []
    if df is not None and len(df):
        for label, g in df.groupby("label", sort=False):
            layer, kind = _split_label(str(label))
            h = np.sum(np.stack(list(g["hist"])), axis=0)
            for j, c in enumerate(h):
                if c:
                    rows.append(dict(run=run.name, layer=layer, kind=kind, bin=j, count=int(c)))
    return pd.DataFrame(rows, columns=["run", "layer", "kind", "bin", "count"])


def report(sources: Sequence[Union[str, RunData]], out_dir: Optional[str] = None,
           names: Optional[Sequence[str]] = None, plot: bool = True):
    """Summaries of one or more traces; with out_dir, write the CSVs and overflow.png.

    Returns the concatenated summary DataFrame (one row per run, layer and kind).
    """
    if names is not None and len(names) != len(sources):
        raise ValueError(f"names: got {len(names)} names for {len(sources)} inputs")
    runs = []
    for i, s in enumerate(sources):
        run = s if isinstance(s, RunData) else load_run(s, names[i] if names else None)
        if names:
            run.name = names[i]
        runs.append(run)
    seen = set()
    for r in runs:                                    # distinct names for the legend
        base, k = r.name, 2
        while r.name in seen:
            r.name = f"{base}#{k}"
            k += 1
        seen.add(r.name)
    summary = pd.concat([summarize(r) for r in runs], ignore_index=True)
    events = event_table(runs)
    summary.attrs["events"] = events
    summary.attrs["logged"] = {r.name: r.logged for r in runs if r.events is not None
                               and len(r.events)}
    if out_dir is not None and len(events):
        with atomic_path(os.path.join(out_dir, "overflow_events.csv")) as tmp:
            events.to_csv(tmp, index=False)
        if plot:
            plot_events(runs, os.path.join(out_dir, "overflow_events.png"))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        steps = pd.concat([per_step(r) for r in runs], ignore_index=True)
        hists = pd.concat([histograms(r) for r in runs], ignore_index=True)
        for df, fname in ((summary, "overflow_summary.csv"), (steps, "overflow_steps.csv"),
                          (hists, "overflow_hist.csv")):
            with atomic_path(os.path.join(out_dir, fname)) as tmp:
                df.to_csv(tmp, index=False)
        if plot:
            plot_report(runs, summary, steps, hists, os.path.join(out_dir, "overflow.png"))
    return summary


def format_table(summary) -> str:
    """A compact fixed-width text table of a summary."""
    cols = [("run", "run"), ("layer", "layer"), ("kind", "kind"), ("mode", "mode"),
            ("acc_bits", "acc"), ("tile", "tile"), ("event_rate", "event rate"),
            ("saturated_output_fraction", "sat. outputs"),
            ("max_abs_prefix", "max|prefix|"), ("max_abs_partial", "max|tile sum|"),
            ("bound", "A2Q bound"), ("min_acc_bits", "needed bits"),
            ("bound_acc_bits", "bound bits")]
    rows = []
    for _, r in summary.iterrows():
        row = []
        for c, _ in cols:
            v = r[c]
            if c == "event_rate":
                row.append(f"{v:.3e}")
            elif c == "saturated_output_fraction":
                row.append(f"{100 * v:.3f}%")
            elif isinstance(v, float) and math.isnan(v):
                row.append("-")
            elif isinstance(v, float):
                row.append(f"{int(v)}" if v == int(v) else f"{v:.3g}")
            else:
                row.append(str(v))
        rows.append(row)
    heads = [h for _, h in cols]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.rjust(w) if i >= 4 else v.ljust(w)      # noqa: E731
                                  for i, (v, w) in enumerate(zip(vals, widths)))
    return "\n".join([line(heads), line(["-" * w for w in widths])] + [line(r) for r in rows])


