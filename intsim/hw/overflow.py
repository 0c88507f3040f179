"""Overflow report: how close every accumulator came to its limits during training.

    report(["runs/hdqt", "runs/hdqt_paper/trace.h5"], out_dir="overflow/")

reads the matmul records of a trace (intsim.Trace.to_hdf5, group "trace/matmul") — a trace.h5
file or a run folder holding one — and, per layer and matmul kind (fwd, grad_in, grad_w):

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
side by side: histograms, event rate over training, observed vs worst-case widths).

Operand widths come from the run's datapath: config.json ("datapath" TOML text, or the
"numerics_spec" / "settings.numerics" of an `intsim cil` run), else the trace file's
"datapath" attribute, else the bits of the trace's quantize records (symmetric codes
assumed).

`trace_training_run(numerics, out_dir, epochs, seed)` produces such a run: FCNet on the real
smartwatch data (intsim.datasets "watch", 7 classes, train-only min-max scaling), every
training step traced.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from intsim.core.datapath import (ACC_OPERANDS, BACKWARD_FALLBACK, Datapath, dumps, from_mapping, loads,
                       operand_range, resolve)
from intsim.core.hadamard import block_size
from intsim.core.numerics import Numerics, preset
from intsim.core.quantizer import code_range, log2_top

KINDS = ("fwd", "grad_in", "grad_w")
ACC_OF = {"fwd": "acc_fwd", "grad_in": "acc_in", "grad_w": "acc_w"}
#: operand letters of qlinear's quantize labels: kind -> (left, right)
LETTERS = {"fwd": ("a", "w"), "grad_in": ("g", "w"), "grad_w": ("g", "a")}
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


def bit_width(v: int) -> int:
    """Bits of the narrowest symmetric signed register holding ±v: bit_length(v) + 1."""
    return int(v).bit_length() + 1


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
    import h5py

    from intsim.core.trace import read_hdf5
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
    with h5py.File(trace_path, "r") as f:
        for k, v in f.attrs.items():
            meta[k] = v.decode() if isinstance(v, bytes) else v
        if numerics is None and isinstance(meta.get("datapath"), str):
            try:
                numerics, how = loads(meta["datapath"]).numerics, "trace.h5 datapath attribute"
            except ValueError:
                pass
    mm = read_hdf5(trace_path, "trace", "matmul")
    qq = read_hdf5(trace_path, "trace", "quantize")
    return RunData(name, trace_path, mm, qq, numerics, how or "trace quantize records", meta)


def _split_label(label: str) -> tuple[str, str]:
    layer, _, kind = label.rpartition("/")
    return (layer, kind) if kind in KINDS else (label, "")


def _max_abs(r: Optional[tuple]) -> Optional[int]:
    return None if r is None else max(abs(r[0]), abs(r[1]))


def _operand_max_from_numerics(nm: Numerics, kind: str, K: int) -> tuple[Optional[int],
                                                                        Optional[int]]:
    left_name, right_name = ACC_OPERANDS[ACC_OF[kind]]
    left = _max_abs(operand_range(getattr(nm, left_name)))
    rspec = getattr(nm, right_name)
    if rspec is None and right_name in BACKWARD_FALLBACK:
        base = _max_abs(operand_range(getattr(nm, BACKWARD_FALLBACK[right_name])))
        rule = nm.hadamard
        p = 1 if rule is None else block_size(K, "pad" if rule == "pad" else None)
        right = None if base is None else base * p
    else:
        right = _max_abs(operand_range(rspec))
    return left, right


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
    lt, rt = LETTERS[kind]
    left = qmax(f"{layer}/{kind}/{lt}")
    right = qmax(f"{layer}/{kind}/{rt}")
    guessed = False
    if right is None and kind != "fwd":          # reused forward codes (Hadamard growth ×p
        right = qmax(f"{layer}/fwd/{rt}")          # unknown here: not included)
        guessed = True
    return left, right, guessed


def summarize(run: RunData):
    """Per (layer, kind) table of the module docstring (pandas DataFrame)."""
    import pandas as pd
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
    import pandas as pd
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
    import pandas as pd
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


# ------------------------------------------------------------------------------ figure
def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def plot_report(runs: Sequence[RunData], summaries, steps, hists, path: str) -> None:
    """Three rows × (fwd, grad_in, grad_w): log2 histograms of tile sums (runs overlaid),
    the fraction of outputs hit by an event over training, and observed vs worst-case
    accumulator width per layer (dashed lines: the configured width)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(15, 11), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 3)
    colors = ["C0", "C3", "C2", "C1", "C4", "C5", "C6", "C7"]
    names = [r.name for r in runs]
    for c, kind in enumerate(KINDS):
        ax = axes[0, c]
        acc_bits = set()
        for i, name in enumerate(names):
            h = hists[(hists["run"] == name) & (hists["kind"] == kind)]
            s = summaries[(summaries["run"] == name) & (summaries["kind"] == kind)]
            acc_bits |= set(int(b) for b in s["acc_bits"])
            if not len(h):
                continue
            tot = h.groupby("bin")["count"].sum()
            x = np.arange(0, max(int(tot.index.max()) + 2, 12))
            y = np.array([tot.get(j, 0) for j in x], float)
            ax.step(x, y / y.sum(), where="mid", color=colors[i % len(colors)], label=name)
        for b in sorted(acc_bits):
            ax.axvline(b - 0.5, color="k", ls="--", lw=0.8)
            ax.text(b - 0.4, 0.95, f"> {b}-bit acc", transform=ax.get_xaxis_transform(),
                    fontsize=7, va="top")
        ax.set_yscale("log")
        ax.set_title(f"{kind}: tile partial sums (all layers)")
        ax.set_xlabel("bit length of |tile sum|")
        ax.set_ylabel("fraction of tile sums")
        _legend(ax, fontsize=7)

        ax = axes[1, c]
        for i, name in enumerate(names):
            st = steps[(steps["run"] == name) & (steps["kind"] == kind)]
            if not len(st):
                continue
            agg = st.groupby("step")["saturated_output_fraction"].mean()
            ax.plot(agg.index, 100 * agg.to_numpy(), color=colors[i % len(colors)], lw=1,
                    label=name)
        ax.set_title(f"{kind}: outputs hit by an event (mean over layers)")
        ax.set_xlabel("training step")
        ax.set_ylabel("% of outputs with ≥ 1 event")
        _legend(ax, fontsize=7)

        ax = axes[2, c]
        layers = []
        for name in names:
            for lay in summaries[(summaries["run"] == name) & (summaries["kind"] == kind)][
                    "layer"]:
                if lay not in layers:
                    layers.append(lay)
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            s = summaries[(summaries["run"] == name) & (summaries["kind"] == kind)].set_index(
                "layer")
            xs = np.arange(len(layers)) + (i - (len(names) - 1) / 2) * width
            obs = [s.loc[lay, "min_acc_bits"] if lay in s.index else np.nan for lay in layers]
            bnd = [s.loc[lay, "bound_acc_bits"] if lay in s.index else np.nan for lay in layers]
            ax.bar(xs, obs, width, color=colors[i % len(colors)], alpha=0.8,
                   label=f"{name}: needed (observed)")
            ax.scatter(xs, bnd, marker="_", s=200, color=colors[i % len(colors)],
                       label=f"{name}: A2Q worst case")
        for b in sorted(acc_bits):
            ax.axhline(b, color="k", ls="--", lw=0.8)
        ax.set_xticks(np.arange(len(layers)))
        ax.set_xticklabels(layers, rotation=20, fontsize=7)
        ax.set_ylabel("accumulator bits")
        ax.set_title(f"{kind}: bits needed (bars) vs A2Q bound (—)")
        if c == 0:
            _legend(ax, fontsize=6, loc="lower left")
    fig.suptitle("Accumulator overflow report: " + " vs ".join(names))
    fig.tight_layout()
    from intsim.formats.atomic import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def report(sources: Sequence[Union[str, RunData]], out_dir: Optional[str] = None,
           names: Optional[Sequence[str]] = None, plot: bool = True):
    """Summaries of one or more traces; with out_dir, write the CSVs and overflow.png.

    Returns the concatenated summary DataFrame (one row per run, layer and kind).
    """
    import pandas as pd
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
    if out_dir is not None:
        from intsim.formats.atomic import atomic_path
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


# --------------------------------------------------------------- producing a trace
def trace_training_run(numerics: Union[str, Numerics, Datapath], out_dir: str, epochs: int = 5,
                       seed: int = 0, *, hidden: Optional[int] = None, batch: int = 128,
                       lr: float = 0.01, momentum: float = 0.9,
                       max_steps: Optional[int] = None, data=None) -> dict:
    """Train FCNet(IN, hidden, hidden) + a 7-way head on the smartwatch data (IN = 54
    features; hidden defaults to IN, the paper's in→in→in HAR network) with every training
    step traced; write out_dir/trace.h5 and out_dir/config.json.

    Data: intsim.datasets.load_dataset("watch"), two test subjects drawn from seed, features
    min-max scaled to [-1, 1] on the training rows only; SGD (lr, momentum), batch `batch`,
    cross-entropy over all 7 classes, `epochs` epochs (or max_steps steps). `data` may be a
    ready (X_train, y_train, X_test, y_test) tuple instead. Returns the config dict (with
    the test accuracy).
    """
    import h5py

    from intsim import __version__
    from intsim.formats.atomic import atomic_path, atomic_write_text
    from intsim.nn.losses import cross_entropy
    from intsim.models.networks import FCNet, IncrementalNet
    from intsim.nn.module import child_seed
    from intsim.nn.optim import SGD
    from intsim.core.rng import SRStream
    from intsim.core.trace import Trace

    dp = resolve(numerics)
    nm = dp.numerics
    sr_seed = dp.seed if dp.seed is not None else seed
    if data is None:
        from intsim.datasets import load_dataset, minmax_preprocess
        ds = load_dataset("watch")
        subjects = np.unique(ds.subject)
        test_subj = np.random.default_rng(child_seed(seed, 7)).choice(subjects, 2, replace=False)
        test = np.isin(ds.subject, test_subj)
        Xtr, Xte = minmax_preprocess()(ds.X[~test], ds.X[test])
        data = (Xtr.astype(np.float32), ds.y[~test], Xte.astype(np.float32), ds.y[test])
        data_desc = (f"watch (seglearn smartwatch, {ds.X.shape[1]} features, "
                     f"{len(ds.class_names)} classes), test subjects "
                     f"{sorted(int(s) for s in test_subj)}, min-max [-1, 1] fit on train")
        n_classes = len(ds.class_names)
    else:
        data_desc = "user-supplied arrays"
        n_classes = int(max(data[1].max(), data[3].max() if len(data[3]) else 0)) + 1
    Xtr, ytr, Xte, yte = data
    in_dim = Xtr.shape[1]
    hidden = in_dim if hidden is None else hidden
    net = IncrementalNet(FCNet(in_dim, hidden, hidden, numerics=nm, seed=seed), n_classes,
                         numerics=nm, seed=child_seed(seed, 1))
    net.set_rng(SRStream(sr_seed))
    opt = SGD(net, lr=lr, momentum=momentum)
    trace = Trace()
    net.set_trace(trace)
    shuffle = np.random.default_rng(child_seed(seed, 2))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "trace.h5")
    step, losses = 0, []
    toml_text = dumps(nm, seed=dp.seed)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["datapath"] = toml_text
            f.attrs["numerics"] = nm.name
            f.attrs["intsim_version"] = __version__
            f.attrs["model"] = f"fcnet:{in_dim},{hidden},{hidden},{n_classes}"
        done = False
        for epoch in range(epochs):
            order = shuffle.permutation(len(Xtr))
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                trace.step = step
                opt.zero_grad()
                logits = net.forward(Xtr[idx])
                loss, g = cross_entropy(logits, ytr[idx])
                net.backward(g)
                opt.step()
                losses.append(float(loss))
                step += 1
                if max_steps is not None and step >= max_steps:
                    done = True
                    break
            trace.to_hdf5(tmp, "trace")
            trace.clear()
            if done:
                break
    net.set_trace(None)
    net.eval()
    correct = 0
    for start in range(0, len(Xte), 512):
        correct += int(np.sum(np.argmax(net.forward(Xte[start:start + 512]), 1)
                              == yte[start:start + 512]))
    acc = correct / len(Xte) if len(Xte) else float("nan")
    cfg = dict(datapath=toml_text, numerics=nm.name, model=f"fcnet:{in_dim},{hidden},{hidden},"
               f"{n_classes}", data=data_desc, epochs=epochs, steps=step, batch=batch, lr=lr,
               momentum=momentum, seed=seed, sr_seed=sr_seed, max_steps=max_steps,
               final_loss=losses[-1] if losses else None, test_accuracy=acc,
               intsim_version=__version__)
    atomic_write_text(os.path.join(out_dir, "config.json"), json.dumps(cfg, indent=1) + "\n")
    return cfg
