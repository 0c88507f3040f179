"""The golden-vector HDF5 file: its layout, its tensor records, writing and reading it.

HDF5 layout (FORMAT "intsim-golden", version 1)
-----------------------------------------------
    /                       attrs: format, format_version, intsim_version, datapath (TOML
                            text), numerics (name), model, seed, sr_seed, batch, steps, lr,
                            momentum, weight_decay, loss, inputs, n_tensors
    /op_order               1-D string dataset: every tensor path in execution order
    /init/<layer>/params/<weight|bias>          initial float32 master weights
    /step_NNN/input/batch/x, labels             the step's synthetic inputs
    /step_NNN/<layer>/fwd/<tensor>              forward matmul of <layer>
    /step_NNN/loss/cross_entropy/logits, grad_logits
    /step_NNN/<layer>/grad_in/<tensor>          input-gradient matmul
    /step_NNN/<layer>/grad_w/<tensor>           weight-gradient matmul
    /step_NNN/<layer>/sgd/<weight|bias>         master weights after the SGD step

<layer> is the module label (backbone.fc1, backbone.fc2, head, …). Tensors of a matmul kind,
in execution order (an operand that is None in the datapath has no codes/scale; a rounding
that is not stochastic has no sr_bits; a float32 matmul has a float32 acc and no acc_*):

    fwd      w_sr_bits w_codes w_scale a_sr_bits a_codes a_scale
             acc_partial acc_register acc_tile_sum acc y
    grad_in  g_hadamard w_hadamard g_sr_bits g_codes g_scale w_sr_bits w_codes w_scale
             acc_partial acc_register acc_tile_sum acc
    grad_w   g_hadamard a_hadamard g_sr_bits g_codes g_scale a_sr_bits a_codes a_scale
             acc_partial acc_register acc_tile_sum acc
    then     grad_in/dx, grad_w/dW (recorded after both matmuls, in that order)

acc_partial[t]  exact sum of tile t (before the register limits it), shape (n_tiles, *acc)
acc_register[t] the accumulator register at the end of tile t (saturate: per-MAC saturated
                register; clamp_tile: the clamped tile sum; wrap: wrapped; exact: exact)
acc_tile_sum[t] the tile-sum register after adding tile t; acc_tile_sum[-1] == acc
*_sr_bits       R of NUMERICS.md §3: the r random bits element i of the operand consumed
                (uint32, r = sr_bits), same shape as the codes

Every dataset has attrs: op_index (global execution order, 0-based, equal to its position in
/op_order), step (-1 for init), layer, kind, tensor, bits, signed, encoding
("twos_complement", "unsigned" or "ieee754_binary32"), hw_type ("int4", "uint4", "int18",
"float32", …), dtype (= hw_type), description; integer tensors also `range` ([lo, hi], the
declared worst case their values lie in); codes also operand, code_bits, format and scale
(the operand's float32 scale, one per group); accumulator tensors tile, n_tiles, mode,
acc_bits, acc_symmetric, tile_sum_bits (0 = unbounded). `bits` is the declared hardware
width: codes = the operand's bits, Hadamard outputs = the width of the transform's exact
range (code bits + log2(block) for signed codes), tile partials = the width of
tile·max|a|·max|b|, registers = the accumulator / tile-sum register widths (an unbounded
tile-sum register: the width of its worst case), float32 tensors 32.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import h5py
import numpy as np

from intsim.core.ranges import width_of_range
from intsim.formats.atomic import atomic_path

FORMAT = "intsim-golden"
FORMAT_VERSION = 1


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


def write_hdf5(tensors: list, root: dict, out: str) -> None:
    """Write the tensors (already in execution order) and root attributes atomically."""
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
