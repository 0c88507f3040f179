"""Trace: a record of every traced quantization and integer matmul (NUMERICS.md §4.1, §2.2).

Each call appends one flat record (a dict of scalars, plus a 64-bin log2 histogram for
matmuls). `step` is set by the caller (e.g. the training loop) and stamped on each record.
Records become a pandas DataFrame (`to_frame`) or are appended to an HDF5 group
(`to_hdf5`: one 1-D dataset per column, `hist` as (n, 64), all resizable, in chunks of about
CHUNK_BYTES (chunk_rows), so appending k rows of b bytes to a column allocates at most k·b
plus one chunk — the bound intsim.formats.run_folder checks free space against first).

`Trace(events=N)` also keeps a per-event log of up to N overflow events (intsim.core.events:
every saturated/wrapped MAC, clamped tile, tile-sum overflow, and every quantizer element
clamped at a code bound, with step, layer, output, tile, k and values): `events_frame()`,
appended by `to_hdf5` to the tables `matmul_events` and `quantize_events` of the group, read
back with `read_events(path)`.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from intsim.core.events import (MATMUL_EVENT_COLUMNS, QUANT_EVENT_COLUMNS, check_event_limit,
                                matmul_events, quantize_events)
from intsim.kernels.stats import code_statistics

MATMUL_COLUMNS = ("step", "label", "op", "mode", "bits", "tile", "tile_sum_bits", "rows",
                  "K", "N", "macs", "outputs", "tiles", "events", "event_rate",
                  "outputs_affected", "saturated_output_fraction", "tiles_affected",
                  "tile_sum_events", "max_abs_partial", "max_abs_prefix", "max_abs_total")
QUANT_COLUMNS = ("step", "label", "op", "rounding", "bits", "signed", "elements", "scale",
                 "at_bounds_fraction", "zero_fraction", "clipped_fraction",
                 "mean_round_err", "mean_abs_round_err")
CHUNK_BYTES = 8192
#: the tables of a trace group: records, then the optional per-event logs
TABLES = {"matmul": MATMUL_COLUMNS, "quantize": QUANT_COLUMNS,
          "matmul_events": MATMUL_EVENT_COLUMNS, "quantize_events": QUANT_EVENT_COLUMNS}


class Trace:
    """Collects per-call records; see the module docstring.

    step: stamped on every record; the training loop (intsim.nn.training) advances it, or call
    advance() after each optimizer step of a loop of your own. eval_passes=False: layers in
    eval mode (model.eval(), e.g. evaluation or feature extraction) are not traced.
    events=N: also keep the per-event log of up to N events (intsim.core.events).
    """

    def __init__(self, events: Optional[int] = None, *, eval_passes: bool = True):
        self.records: list[dict] = []
        self.hists: list[np.ndarray] = []     # one per matmul record, same order
        self.step = 0
        self.eval_passes = bool(eval_passes)
        self.event_limit = check_event_limit(events)
        self.events_logged = 0                 # over the trace's life (clear() keeps it)
        self.event_chunks: dict[str, list] = {"matmul_events": [], "quantize_events": []}

    def advance(self, step: Optional[int] = None) -> int:
        """Move to the next optimizer step (or to `step`); returns the new step."""
        self.step = self.step + 1 if step is None else int(step)
        return self.step

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        """Drop the records and logged events held in memory (e.g. after to_hdf5); the
        count of events logged so far is kept, so the limit holds over the whole run."""
        self.records.clear()
        self.hists.clear()
        for chunks in self.event_chunks.values():
            chunks.clear()

    @property
    def event_room(self) -> int:
        """How many more events the log may keep."""
        return max(0, self.event_limit - self.events_logged)

    def _log(self, table: str, label: str, cols: dict) -> None:
        n = len(next(iter(cols.values())))
        if n:
            self.event_chunks[table].append(dict(cols, _step=self.step, _label=label, _rows=n))
            self.events_logged += n

    # -- recorders (called by int_matmul and quantize) ---------------------------------
    def record_matmul(self, label: str, acc, stats, shape) -> None:
        rows, K, N = shape
        macs = rows * K * N
        events = int(stats.events.sum())
        tiles = rows * N * stats.n_tiles
        per = tiles if acc.mode == "clamp_tile" else macs
        affected = int(np.count_nonzero(stats.events))
        self.records.append(dict(
            step=self.step, label=label, op="matmul", mode=str(acc.mode), bits=acc.bits,
            tile=acc.tile or K, tile_sum_bits=acc.tile_sum_bits or 0, rows=rows, K=K, N=N,
            macs=macs, outputs=rows * N, tiles=tiles, events=events,
            event_rate=events / per if per else 0.0, outputs_affected=affected,
            saturated_output_fraction=affected / (rows * N) if rows * N else 0.0,
            tiles_affected=int(stats.tiles_hit.sum()),
            tile_sum_events=int(stats.ts_events.sum()),
            max_abs_partial=stats.max_abs_partial, max_abs_prefix=stats.max_abs_prefix,
            max_abs_total=stats.max_abs_total, hist_index=len(self.hists)))
        self.hists.append(np.asarray(stats.hist, np.int64))

    def record_matmul_events(self, label: str, acc, stats, a: np.ndarray, b: np.ndarray
                             ) -> None:
        """The events of the int_matmul call a · b just recorded (core.events.matmul_events);
        int_matmul calls it only when the log has room (`event_room`)."""
        if self.event_room and (stats.events.any() or stats.ts_events.any()):
            self._log("matmul_events", label, matmul_events(
                acc, a, b, stats.events, stats.ts_events, self.event_room))

    def record_quantize(self, label: str, x32: np.ndarray, q, rounding: str) -> None:
        self.record_codes(label, q.codes, x32 / q.scale, q.qmin, q.qmax, q.bits, q.signed,
                          rounding, float(q.scale))

    def record_codes(self, label: str, codes: np.ndarray, v: np.ndarray, qmin: int,
                     qmax: int, bits: int, signed: bool, rounding: str, scale: float) -> None:
        """One quantization record from the codes and the pre-rounding values v = x/scale."""
        codes = codes.reshape(-1)
        n = codes.size
        at_bounds, zeros, clipped, err_sum, abs_err_sum = code_statistics(
            codes, np.ascontiguousarray(v, np.float32).reshape(-1), qmin, qmax)
        rec = dict(at_bounds_fraction=at_bounds / n if n else 0.0,
                   zero_fraction=zeros / n if n else 0.0,
                   clipped_fraction=clipped / n if n else 0.0,
                   mean_round_err=err_sum / n if n else 0.0,
                   mean_abs_round_err=abs_err_sum / n if n else 0.0)
        self.records.append(dict(step=self.step, label=label, op="quantize",
                                 rounding=str(rounding), bits=bits, signed=bool(signed),
                                 elements=n, scale=scale, **rec))
        if clipped and self.event_room:
            cols = quantize_events(v, codes, qmin, qmax, self.event_room)
            if cols is not None:
                self._log("quantize_events", label, cols)

    # -- views ---------------------------------------------------------------------------
    def to_frame(self, op: Optional[str] = None):
        """Records as a pandas DataFrame (one row per call); matmul rows carry `hist`.

        op="matmul" or "quantize" keeps one kind (their columns differ: a frame of both has
        NaN in the other kind's columns)."""
        import pandas as pd
        rows = [dict(r) for r in self.records if op is None or r["op"] == op]
        for r in rows:
            if "hist_index" in r:
                r["hist"] = self.hists[r.pop("hist_index")]
        return pd.DataFrame(rows)

    def events_frame(self, table: str = "matmul_events"):
        """The logged events held in memory as a DataFrame (columns core.events)."""
        import pandas as pd
        cols = TABLES[table]
        chunks = self.event_chunks[table]
        if not chunks:
            return pd.DataFrame(columns=list(cols))
        return pd.DataFrame({c: _event_column(chunks, c) for c in cols})

    def summary(self):
        """Per (label, op): totals of counts, worst maxima, summed histograms' event rate."""
        df = self.to_frame("matmul")
        if df.empty:
            return df
        g = df.groupby("label", sort=False)
        out = g.agg(mode=("mode", "first"), bits=("bits", "first"), calls=("step", "size"),
                    macs=("macs", "sum"), events=("events", "sum"),
                    outputs=("outputs", "sum"), outputs_affected=("outputs_affected", "sum"),
                    tiles_affected=("tiles_affected", "sum"),
                    tile_sum_events=("tile_sum_events", "sum"),
                    max_abs_partial=("max_abs_partial", "max"),
                    max_abs_prefix=("max_abs_prefix", "max"))
        out["saturated_output_fraction"] = out["outputs_affected"] / out["outputs"]
        return out.reset_index()

    def columns(self) -> dict[str, dict[str, np.ndarray]]:
        """{table: {column: array}} of what to_hdf5 appends: the records, then the event logs."""
        import h5py
        out: dict[str, dict[str, np.ndarray]] = {}
        for op in ("matmul", "quantize"):
            recs = [r for r in self.records if r["op"] == op]
            if not recs:
                continue
            cols = {}
            for c in TABLES[op]:
                vals = [r[c] for r in recs]
                cols[c] = (np.array(vals, dtype=h5py.string_dtype()) if isinstance(vals[0], str)
                           else np.asarray(vals))
            if op == "matmul":
                cols["hist"] = np.stack([self.hists[r["hist_index"]] for r in recs])
            out[op] = cols
        for table, chunks in self.event_chunks.items():
            if not chunks:
                continue
            cols = {}
            for c in TABLES[table]:
                vals = _event_column(chunks, c)
                cols[c] = vals.astype(h5py.string_dtype()) if vals.dtype == object else vals
            out[table] = cols
        return out

    def to_hdf5(self, path: str, group: str = "trace", columns: Optional[dict] = None) -> None:
        """Append all records to HDF5 `path`/`group` (created if absent) and keep them.
        `columns`: self.columns(), when already computed.

        The file is flushed while every dataset is open, so a failed write raises here rather
        than in the destructors of the HDF5 objects (where HDF5 cannot report it)."""
        import h5py
        with h5py.File(path, "a") as f:
            for table, cols in (self.columns() if columns is None else columns).items():
                g = f.require_group(f"{group}/{table}")
                for c, arr in cols.items():
                    _append(g, c, arr)
            f.flush()


def _event_column(chunks: list, c: str) -> np.ndarray:
    """One column of logged event chunks (step and label are stored once per chunk)."""
    if c == "step":
        return np.concatenate([np.full(ch["_rows"], ch["_step"], np.int64) for ch in chunks])
    if c == "label":
        return np.concatenate([np.full(ch["_rows"], ch["_label"], dtype=object) for ch in chunks])
    return np.concatenate([np.asarray(ch[c]) for ch in chunks])


def chunk_rows(arr: np.ndarray) -> int:
    """Rows per HDF5 chunk of a column like `arr`: about CHUNK_BYTES, at least 16."""
    row = max(1, arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64)))
    return max(16, CHUNK_BYTES // row)


def _append(g, name: str, arr: np.ndarray) -> None:
    if name not in g:
        g.create_dataset(name, data=arr, maxshape=(None,) + arr.shape[1:],
                         chunks=(chunk_rows(arr),) + arr.shape[1:])
        return
    d = g[name]
    n = d.shape[0]
    d.resize(n + arr.shape[0], axis=0)
    d[n:] = arr


def read_hdf5(path: str, group: str = "trace", op: str = "matmul"):
    """The records an HDF5 trace group holds, as a DataFrame (`hist` as a column of arrays)."""
    import h5py
    import pandas as pd
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no trace file at {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"path: {path} is not a readable HDF5 trace file ({e})") from None
    with f:
        if f"{group}/{op}" not in f:
            return pd.DataFrame()
        g = f[f"{group}/{op}"]
        cols = {}
        for name, d in g.items():
            data = d[()]
            if name == "hist":
                cols[name] = list(data)
            elif d.dtype.kind == "O":
                cols[name] = [x.decode() if isinstance(x, bytes) else x for x in data]
            else:
                cols[name] = data
        return pd.DataFrame(cols)


def read_events(path: str, group: str = "trace", table: str = "matmul_events"):
    """The per-event log of a trace file as a DataFrame (columns core.events; empty when the
    run logged none)."""
    import pandas as pd
    df = read_hdf5(path, group, table)
    return df[list(TABLES[table])] if len(df) else pd.DataFrame(columns=list(TABLES[table]))
