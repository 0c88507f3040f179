"""The golden-vector HDF5 file: its layout, its tensor records, writing and reading it.

HDF5 layout (FORMAT "intsim-golden", version 2)
-----------------------------------------------
    /                       attrs: format, format_version, intsim_version, source ("training"
                            or "vectors"), datapath (TOML text), datapath_source, numerics,
                            model, model_kind, seed, sr_seed, batch, steps, lr, momentum,
                            weight_decay, loss, inputs, init, select, events_limit, losses,
                            n_tensors, n_matmuls
    /op_order               1-D string dataset: every tensor path in execution order
    /init/<layer>/params/<name>                 initial float32 master weights
    /step_NNN/input/batch/x, labels | r         the step's synthetic inputs (r: projection loss)
    /step_NNN/<layer>/fwd/<tensor>              forward matmul of <layer>
    /step_NNN/loss/<cross_entropy|projection>/<logits, grad_logits | output, grad_output>
    /step_NNN/<layer>/grad_in/<tensor>          input-gradient matmul
    /step_NNN/<layer>/grad_w/<tensor>           weight-gradient matmul
    /step_NNN/<layer>/sgd/<name>                master weights after the SGD step
    /vectors/<case>/<kind>/<tensor>             `intsim vectors` files: directed/stress matmuls
                                                (kind fwd | grad_in | grad_w) and quantizer
                                                vectors (kind quantize)
    /trace/matmul, /trace/quantize              the run's trace (intsim.core.trace records)
    /trace/matmul_events, /trace/quantize_events  the per-event log (with --events)
    /coverage/matmuls/<column>, /coverage/quantizers/<column>   intsim.hw.coverage tables;
                                                attrs thin, notes, by_kind (JSON text)

<layer> is the module label (backbone.fc1, head, conv, block.conv1, …). Tensors of a matmul
kind, in execution order (an operand that is None in the datapath has no x/codes/scale; a
rounding that is not stochastic has no sr_bits; a log2 operand has no m/v; a float32 matmul
has a float32 acc and no acc_*):

    fwd      w_x w_sr_bits w_codes w_scale w_m w_v   a_x a_sr_bits a_codes a_scale a_m a_v
             acc_partial acc_register acc_tile_sum acc y
    grad_in  g_hadamard w_hadamard g_sr_bits g_codes g_scale g_m g_v
             w_sr_bits w_codes w_scale w_m w_v  acc_partial acc_register acc_tile_sum acc
    grad_w   g_hadamard a_hadamard g_sr_bits g_codes g_scale g_m g_v
             a_sr_bits a_codes a_scale a_m a_v  acc_partial acc_register acc_tile_sum acc
    then     grad_in/dx, grad_w/dW (recorded after both matmuls, in that order)

*_x             the quantizer's input (forward operands; a backward operand's input is its
                *_hadamard tensor)
*_m, *_v        the clamp point m (one per group; inf for a fixed scale) and
                v = fl32(clamp(x, -m, m)/scale), the value each code was rounded from
*_sr_bits       R of NUMERICS.md §3: the r random bits element i of the operand consumed
                (uint32, r = sr_bits), same shape as the codes
acc_partial[t]  exact sum of tile t (before the register limits it), shape (n_tiles, *acc)
acc_register[t] the accumulator register at the end of tile t (saturate: per-MAC saturated
                register; clamp_tile: the clamped tile sum; wrap: wrapped; exact: exact)
acc_tile_sum[t] the tile-sum register after adding tile t; acc_tile_sum[-1] == acc

Every dataset has attrs: op_index (global execution order, 0-based, equal to its position in
/op_order), step (-1 for init and vectors), layer, kind, tensor, bits, signed, encoding
("twos_complement", "unsigned" or "ieee754_binary32"), hw_type ("int4", "uint4", "int18",
"float32", …), dtype (= hw_type), description; integer tensors also `range` ([lo, hi], the
declared worst case their values lie in); codes also operand, code_bits, format, rounding,
sr_bits and scale (the operand's float32 scale, one per group); Hadamard outputs `block`;
accumulator tensors tile, n_tiles, mode, acc_bits, acc_symmetric, tile_sum_bits (0 =
unbounded). `bits` is the declared hardware width: codes = the operand's bits, Hadamard outputs
= the width of the transform's exact range (code bits + log2(block) for signed codes), tile
partials = the width of tile·max|a|·max|b|, registers = the accumulator / tile-sum register
widths (an unbounded tile-sum register: the width of its worst case), float32 tensors 32.

Matmul descriptors: the HDF5 group of every integer matmul (e.g. /step_000/backbone.fc1/fwd)
carries attributes that say how to compute it (`read_matmuls`):
    matmul (the group path), op_index (of its result), step, layer, kind, label, text
    left, right          paths of the two operand tensors
    left_layout "G,M,K"  left[g, m, k]; K, the reduction, is its last axis
    right_layout         "N,K" (right[n, k], the forward weights), "K,N" (right[k, n]) or
                         "G,K,N" (right[g, k, n], one per group)
    out_layout "G,M,N", tiles_layout "T,G,M,N"  (acc and acc_partial/register/tile_sum)
    G, M, K, N           out[g, m, n] = TS over tiles of R(Σ_k left[g, m, k]·right[·, k, n])
    reduction            which layer axis K is (in-features, out-features, batch rows)
    accumulator, mode, acc_bits, acc_symmetric, tile_configured (0 = none), tile (the
                         effective tile min(tile, K)), n_tiles, tile_sum_bits (0 = unbounded),
                         register_range, tile_sum_range ([lo, hi] the registers hold)
    hadamard_rule, hadamard_block (p of the backward transform; 1 = none)
    left_operand, right_operand  the Numerics fields they come from
    left_scale, right_scale, left_sr_bits, right_sr_bits, left_v, right_v, left_m, right_m,
    left_codes, right_codes
                         paths ("" when absent) of the operands' quantizer tensors; the codes
                         are `left`/`right` except for a forward activation quantized once per
                         batch (act_scale per_batch): a_codes, a_v keep the input's shape and
                         `left` is a_cols, those codes unfolded (im2col) to (G, L, K)
    partial, register, tile_sum, result   paths of acc_partial, acc_register, acc_tile_sum, acc
    rescale              the float32 rescale of the result
K means the reduction length of a matmul everywhere (NUMERICS.md §4).

Version history: 1 — tensors only; 2 — *_x, *_m, *_v tensors, codes attrs rounding/sr_bits,
matmul descriptors, trace and coverage groups, model specs beyond FCNet, vectors files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional

import h5py
import numpy as np

from intsim.core.ranges import width_of_range
from intsim.formats.atomic import atomic_path, storage
from intsim.formats.run_folder import (SPACE_MARGIN, append_bytes_bound, ensure_space,
                                       remove_space_probe)

FORMAT = "intsim-golden"
FORMAT_VERSION = 2
#: root-level groups that hold no golden tensors (metadata a dump need not have)
META_GROUPS = ("op_order", "trace", "coverage")


@dataclass
class Tensor:
    path: str
    value: np.ndarray
    attrs: dict = field(default_factory=dict)


def float_tensor(path, value, description, **extra) -> Tensor:
    v = np.array(value, np.float32)               # a copy: parameters change in place
    return Tensor(path, v, dict(bits=32, signed=True, encoding="ieee754_binary32",
                                hw_type="float32", description=description, **extra))


def int_tensor(path, value, lo, hi, description, **extra) -> Tensor:
    bits, signed = width_of_range(lo, hi)
    v = np.array(value)
    if v.size:
        vmin, vmax = int(v.min()), int(v.max())
        if vmin < lo or vmax > hi:
            raise RuntimeError(f"golden: {path} has values [{vmin}, {vmax}] outside its "
                               f"declared range [{lo}, {hi}]")
    return Tensor(path, v, dict(bits=bits, signed=signed,
                                encoding="twos_complement" if signed else "unsigned",
                                hw_type=f"{'int' if signed else 'uint'}{bits}",
                                description=description, range=np.array([lo, hi], np.int64),
                                **extra))


def write_hdf5(tensors: list, root: dict, out: str, groups: Optional[dict] = None,
               trace=None, coverage: Optional[dict] = None) -> None:
    """Write the tensors (already in execution order), root attributes, matmul descriptors
    (group path -> attributes), the trace (an intsim Trace, group "trace") and the coverage
    tables atomically. The file system must have room for a bound on the file's size first
    (formats.run_folder.ensure_space: HDF5 must never meet a full disk, it may crash there);
    StorageError naming `out` otherwise."""
    folder = os.path.dirname(os.path.abspath(out))
    with storage(out):
        os.makedirs(folder, exist_ok=True)
    try:
        ensure_space(out, _size_bound(tensors, groups, trace, coverage))
    finally:
        remove_space_probe(folder)
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in root.items():
                f.attrs[k] = _attr(v)
            order = [t.path for t in tensors]
            f.create_dataset("op_order", data=np.array(order, dtype=h5py.string_dtype()))
            for t in tensors:
                d = f.create_dataset(t.path, data=t.value)
                for k, v in t.attrs.items():
                    d.attrs[k] = _attr(v)
                d.attrs["dtype"] = t.attrs["hw_type"]
            for path, attrs in (groups or {}).items():
                g = f.require_group(path)
                for k, v in attrs.items():
                    g.attrs[k] = _attr(v)
            if coverage is not None:
                _write_coverage(f, coverage)
        if trace is not None and len(trace.records):
            trace.to_hdf5(tmp, "trace")


def _size_bound(tensors: list, groups: Optional[dict], trace, coverage: Optional[dict]) -> int:
    """An upper bound on the bytes of a golden file: each tensor's data, path and attributes
    plus 4 KiB of HDF5 object header, each group and coverage column 4 KiB plus its data,
    the trace as run_folder.append_bytes_bound counts it."""
    total = sum(t.value.nbytes + len(t.path) + 64 * len(t.attrs) + 4096 for t in tensors)
    total += 4096 * len(groups or {}) + sum(len(str(v)) for g in (groups or {}).values()
                                            for v in g.values())
    for table in ("matmuls", "quantizers") if coverage else ():
        total += sum(4096 + 64 * len(v) for v in coverage[table].values())
    if trace is not None and len(trace.records):
        total += append_bytes_bound(trace)
    return int(1.25 * total) + SPACE_MARGIN


def _write_coverage(f: h5py.File, cov: dict) -> None:
    g = f.require_group("coverage")
    for k, v in cov["attrs"].items():
        g.attrs[k] = v
    for table in ("matmuls", "quantizers"):
        t = g.require_group(table)
        for col, vals in cov[table].items():
            arr = (np.array([str(v) for v in vals], dtype=h5py.string_dtype())
                   if vals and isinstance(vals[0], str) else np.asarray(vals))
            t.create_dataset(col, data=arr)


def read_matmuls(f: h5py.File) -> list:
    """The matmul descriptors of an open golden file (dicts, execution order)."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and "matmul" in obj.attrs:
            found.append({k: _plain(v) for k, v in obj.attrs.items()})
    f.visititems(visit)
    return sorted(found, key=lambda d: int(d["op_index"]))


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v.item() if hasattr(v, "item") else v


def read_coverage(path: str) -> dict:
    """{"matmuls": DataFrame, "quantizers": DataFrame, "thin": [...], "notes": [...],
    "by_kind": [...]} of a golden file's coverage group."""
    import json

    import pandas as pd
    with open_hdf5(path, "golden") as f:
        if "coverage" not in f:
            raise ValueError(f"golden: {path} has no coverage group (format version "
                             f"{f.attrs.get('format_version')})")
        g = f["coverage"]
        out = {k: json.loads(g.attrs[k]) for k in ("thin", "notes", "by_kind")}
        for table in ("matmuls", "quantizers"):
            out[table] = pd.DataFrame({c: [x.decode() if isinstance(x, bytes) else x
                                           for x in d[()]] for c, d in g[table].items()})
    return out


@dataclass
class MatmulVectors:
    """One integer matmul of a golden file: its descriptor, left (G, M, K) and right
    (G, K, N) int64 operands, and the expected results {partial, register, tile_sum,
    result} (tile tensors (n_tiles, G, M, N), result (G, M, N))."""
    desc: dict
    left: np.ndarray
    right: np.ndarray
    expected: dict


def iter_matmuls(path: str):
    """Every integer matmul of a golden or vectors file, in execution order (MatmulVectors):
    what a test bench (e.g. a cocotb one) needs to drive and check an accumulator."""
    with open_hdf5(path, "golden") as f:
        for desc in read_matmuls(f):
            left, right = matmul_operands(f, desc)
            exp = {k: np.asarray(f[desc[k]][()], np.int64)
                   for k in ("partial", "register", "tile_sum", "result")}
            yield MatmulVectors(desc, left, np.ascontiguousarray(right), exp)


def matmul_operands(f: h5py.File, desc: dict) -> tuple[np.ndarray, np.ndarray]:
    """(left (G, M, K), right (G, K, N)) int64 of a matmul descriptor, whatever the stored
    right layout (N,K), (K,N) or (G,K,N)."""
    left = np.asarray(f[desc["left"]][()], np.int64)
    right = np.asarray(f[desc["right"]][()], np.int64)
    lay = desc["right_layout"]
    if lay == "N,K":
        right = right.T
    if lay in ("N,K", "K,N"):
        right = np.broadcast_to(right, (left.shape[0],) + right.shape)
    return left, right


def _attr(v):
    """An HDF5 attribute value: None as 0, str-valued enums (MatmulKind, …) as plain str."""
    if v is None:
        return 0
    return str(v) if isinstance(v, str) else v


def read_op_order(f) -> list:
    """Tensor paths of an open golden/dump h5py.File in execution order."""
    if "op_order" in f:
        return [p.decode() if isinstance(p, bytes) else str(p) for p in f["op_order"][()]]
    found = []

    def visit(name, obj):
        if hasattr(obj, "shape") and "op_index" in obj.attrs:
            found.append((int(obj.attrs["op_index"]), name))
    f.visititems(visit)
    return [n for _, n in sorted(found)]


def open_hdf5(path, what: str, mode: str = "r") -> h5py.File:
    """h5py.File(path, mode), with errors that name the file: FileNotFoundError for a missing
    file, ValueError for one that is not a readable HDF5 file (truncated, another format)."""
    path = os.fspath(path)
    if mode == "r" and not os.path.exists(path):
        raise FileNotFoundError(f"{what}: no such file {path}")
    if os.path.isdir(path):
        raise ValueError(f"{what}: {path} is a folder, expected an HDF5 file")
    try:
        return h5py.File(path, mode)
    except OSError as e:
        raise ValueError(f"{what}: {path} is not a readable HDF5 file ({e})") from None


def read_dataset(f: h5py.File, name: str, what: str, path: str) -> np.ndarray:
    """f[name][()] as an array, with an error naming the file and dataset if HDF5 fails."""
    try:
        return np.asarray(f[name][()])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{what}: {path}: dataset {name} cannot be read ({e})") from None
