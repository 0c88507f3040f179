"""Golden vectors: every intermediate of a few seeded training steps, for hardware test benches.

    write_golden(datapath, "fcnet:16,16,16,4", batch=8, steps=2, seed=0, out="golden.h5",
                 hex_dir="hex/")

runs S steps of SGD on an FCNet backbone + IncrementalNet head with the datapath's numerics on
every layer, seeded synthetic inputs, and writes one HDF5 file (layout below). Every
intermediate of every quantized layer is captured through intsim.qlinear.RECORDER; the
golden writer adds, for every integer matmul, the per-tile partial sums before and after the
accumulator register and the running tile-sum register values (recomputed from the recorded
operand codes with intsim.int_matmul, and checked to end at the recorded result), and for
every stochastically rounded operand the r random bits each element consumed (re-derived
from the SR stream, and checked to reproduce the recorded codes).

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

import json
import os
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul
from intsim.core.datapath import Datapath, resolve
from intsim.core.hadamard import block_size
from intsim.kernels.hashing import element_bits_reference
from intsim.core.numerics import Numerics, QuantSpec
from intsim.core.quantizer import code_dtype, code_range, log2_top, quantize, quantize_log2
from intsim.core.rng import SRDraw, SRStream

FORMAT = "intsim-golden"
FORMAT_VERSION = 1
LR, MOMENTUM = 0.01, 0.9
DEFAULT_CLASSES = 10
MATMUL_KINDS = ("fwd", "grad_in", "grad_w")
#: (matmul kind, operand letter in qlinear's record names) -> Numerics field
OPERAND_OF = {("fwd", "w"): "w_fwd", ("fwd", "a"): "a_fwd", ("grad_in", "g"): "g_in",
              ("grad_in", "w"): "w_bwd", ("grad_w", "g"): "g_w", ("grad_w", "a"): "a_bwd"}
GROUPED = ("a_fwd", "g_in", "g_w", "a_bwd")          # one scale / SR draw per group
ACC_OF = {"fwd": "acc_fwd", "grad_in": "acc_in", "grad_w": "acc_w"}

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


# ------------------------------------------------------------------------ model spec
@dataclass(frozen=True)
class ModelSpec:
    """fcnet:IN,HIDDEN,FEATURE[,CLASSES] — FCNet(IN, HIDDEN, FEATURE) + a CLASSES-way head."""
    in_dim: int
    hidden: int
    feature: int
    classes: int = DEFAULT_CLASSES

    def __str__(self) -> str:
        return f"fcnet:{self.in_dim},{self.hidden},{self.feature},{self.classes}"


def parse_model(spec: str) -> ModelSpec:
    """Parse 'fcnet:IN,HIDDEN,FEATURE[,CLASSES]'."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"model: expected 'fcnet:IN,HIDDEN,FEATURE[,CLASSES]', got {spec!r}")
    kind, dims = spec.split(":", 1)
    if kind.strip().lower() != "fcnet":
        raise ValueError(f"model: only 'fcnet' is supported, got {kind!r}")
    try:
        vals = [int(v) for v in dims.split(",")]
    except ValueError:
        raise ValueError(f"model: dimensions must be integers, got {dims!r}") from None
    if len(vals) not in (3, 4) or min(vals) < 1:
        raise ValueError(f"model: expected 3 or 4 positive integers IN,HIDDEN,FEATURE[,CLASSES],"
                         f" got {dims!r}")
    if len(vals) == 4 and vals[3] < 2:
        raise ValueError("model: CLASSES must be at least 2")
    return ModelSpec(*vals)


# ------------------------------------------------------------------------ random bits
def element_random_bits(draw_key: int, count: int, sr_bits: int, offset: int = 0) -> np.ndarray:
    """R = element_bits(draw_key, offset + i) >> (64 - sr_bits) for i < count (uint32 for
    sr_bits ≤ 32), vectorised in NumPy uint64 arithmetic (wraps modulo 2^64) — the bits the
    stochastic rounding of NUMERICS.md §3 adds below the kept LSB of element i."""
    if not 1 <= sr_bits <= 64:
        raise ValueError(f"sr_bits: expected 1 … 64, got {sr_bits}")
    i = np.arange(offset + 1, offset + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(draw_key) + i * _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _MUL1
        z = (z ^ (z >> np.uint64(27))) * _MUL2
        z = z ^ (z >> np.uint64(31))
    r = z >> np.uint64(64 - sr_bits)
    return r.astype(np.uint32) if sr_bits <= 32 else r


# ----------------------------------------------------------------- widths and ranges
def width_of_range(lo: int, hi: int) -> tuple[int, bool]:
    """(bits, signed) of the narrowest two's-complement (lo < 0) or unsigned type holding
    every integer in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo < 0:
        return max(max(hi, 0).bit_length(), (-lo - 1).bit_length()) + 1, True
    return max(1, hi.bit_length()), False


def spec_range(spec: QuantSpec, codes: np.ndarray) -> tuple[int, int]:
    """(qmin, qmax) of the codes of one quantization call under `spec`."""
    if spec.format == "log2":
        top = log2_top(spec.bits)
        return -top, top
    signed = spec.signed
    if signed is None:                     # auto: what this call chose (the dtype tells)
        if codes.dtype.itemsize > code_dtype(spec.bits, True).itemsize:
            # groups that chose differently were stacked into a wider type: the union
            return code_range(spec.bits, True, spec.symmetric)[0], (1 << spec.bits) - 1
        signed = codes.dtype.kind == "i"
    return code_range(spec.bits, bool(signed), spec.symmetric)


def hadamard_range(lo: int, hi: int, p: int) -> tuple[int, int]:
    """Exact range of H_p·x for x in [lo, hi]^p (row 0 sums, other rows are half ±)."""
    if p == 1:
        return lo, hi
    h = p // 2
    return min(p * lo, h * (lo - hi)), max(p * hi, h * (hi - lo))


def _product_range(ar, br) -> tuple[int, int]:
    c = [ar[0] * br[0], ar[0] * br[1], ar[1] * br[0], ar[1] * br[1]]
    return min(c), max(c)


# ----------------------------------------------------------------------- the records
@dataclass
class Tensor:
    path: str
    value: np.ndarray
    attrs: dict = field(default_factory=dict)


def _float_tensor(path, value, description, **extra) -> Tensor:
    v = np.array(value, np.float32)               # a copy: parameters change in place
    return Tensor(path, v, dict(bits=32, signed=True, encoding="ieee754_binary32",
                                hw_type="float32", description=description, **extra))


def _int_tensor(path, value, lo, hi, description, **extra) -> Tensor:
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


def _describe_spec(op: str, spec: QuantSpec) -> str:
    scale = ("dynamic" if spec.scale is None else spec.scale)
    sr = f" r={spec.sr_bits}" if spec.stochastic else ""
    fmt = " log2" if spec.format == "log2" else ""
    return (f"{op}: {spec.bits}-bit{fmt} {spec.rounding}{sr}, clip {spec.clip}, scale {scale}")


class _StepRecorder:
    """Receives qlinear's records of one training step; emits golden Tensors in order."""

    def __init__(self, out: list, step: int, numerics: Numerics, stream: SRStream):
        self.out, self.step, self.nm, self.stream = out, step, numerics, stream
        self.state: dict[tuple, dict] = {}     # (layer, kind) -> {name: (array, lo, hi)}
        self.fwd_codes: dict[tuple, tuple] = {}  # (layer, letter) -> (codes, lo, hi)
        self.last_codes: dict[tuple, Tensor] = {}  # (layer, kind, letter) -> codes Tensor

    def _path(self, layer, kind, tensor):
        return f"step_{self.step:03d}/{layer}/{kind}/{tensor}"

    def _emit(self, t: Tensor, layer, kind, tensor):
        t.attrs.update(step=self.step, layer=layer, kind=kind, tensor=tensor)
        self.out.append(t)

    def record(self, name: str, value) -> None:
        parts = name.split("/")
        layer, kind, rest = parts[0] or "layer", parts[1], parts[2:]
        tensor = "_".join(rest)
        value = np.array(value, copy=True)
        st = self.state.setdefault((layer, kind), {})
        path = self._path(layer, kind, tensor)
        if len(rest) == 2 and rest[1] == "codes":
            self._codes(layer, kind, rest[0], value, st)
        elif len(rest) == 2 and rest[1] == "scale":
            op = OPERAND_OF[(kind, rest[0])]
            codes = self.last_codes.pop((layer, kind, rest[0]), None)
            if codes is not None:
                codes.attrs["scale"] = np.asarray(value, np.float32)
            self._emit(_float_tensor(path, value, f"{op} scale (float32, one per group)"
                                     if op in GROUPED else f"{op} scale (float32)",
                                     operand=op), layer, kind, tensor)
        elif tensor in ("w_hadamard", "a_hadamard"):
            letter = tensor[0]
            src = self.fwd_codes.get((layer, letter))
            if value.dtype.kind in "iu" and src is not None:
                n_src = src[0].shape[0] if letter == "w" else src[0].shape[1]
                rule = self.nm.hadamard
                p = 1 if rule is None else block_size(n_src, "pad" if rule == "pad" else None)
                lo, hi = hadamard_range(src[1], src[2], p)
                st[tensor] = (value, lo, hi)
                what = "H_out·w (forward weight codes, along N)" if letter == "w" else \
                    "H_bs·a (forward activation codes, along the batch)"
                self._emit(_int_tensor(path, value, lo, hi, f"{what}, block {p}, exact",
                                       block=p), layer, kind, tensor)
            else:
                st[tensor] = (value, None, None)
                self._emit(_float_tensor(path, value, f"{tensor} (float32 operand)"), layer,
                           kind, tensor)
        elif tensor == "g_hadamard":
            st[tensor] = (value, None, None)
            axis = "N (G·H_out)" if kind == "grad_in" else "the batch (Gᵀ·H_bs)"
            self._emit(_float_tensor(path, value, f"output gradient Hadamard-transformed along "
                                     f"{axis}, float32"), layer, kind, tensor)
        elif tensor == "acc":
            self._acc(layer, kind, value, st)
            self.state.pop((layer, kind), None)
        elif tensor in ("y", "dx", "dW"):
            desc = {"y": "forward output fl32(acc)·fl32(s_a·s_w), before any bias",
                    "dx": "input gradient dL/dx (float32, after the straight-through mask)",
                    "dW": "weight gradient dL/dW (float32, after the straight-through mask)"}
            self._emit(_float_tensor(path, value, desc[tensor]), layer, kind, tensor)
        else:                                   # anything new qlinear may record
            if value.dtype.kind in "iu":
                self._emit(_int_tensor(path, value, int(value.min(initial=0)),
                                       int(value.max(initial=0)), tensor), layer, kind, tensor)
            else:
                self._emit(_float_tensor(path, value, tensor), layer, kind, tensor)

    # -- operand codes (+ the random bits they consumed) ---------------------------------
    def _codes(self, layer, kind, letter, codes, st):
        op = OPERAND_OF[(kind, letter)]
        spec: QuantSpec = getattr(self.nm, op)
        if spec.stochastic:
            bits = self._sr_bits(layer, kind, letter, op, spec, codes, st)
            t = f"{letter}_sr_bits"
            self._emit(Tensor(self._path(layer, kind, t), bits, dict(
                bits=spec.sr_bits, signed=False, encoding="unsigned",
                hw_type=f"uint{spec.sr_bits}", operand=op,
                description=f"{op}: the {spec.sr_bits} random bits R added below the kept "
                            f"LSB of each element (NUMERICS.md §2.1, §3)")), layer, kind, t)
        lo, hi = spec_range(spec, codes)
        st[f"{letter}_codes"] = (codes, lo, hi)
        if kind == "fwd":
            self.fwd_codes[(layer, letter)] = (codes, lo, hi)
        t = f"{letter}_codes"
        extra = dict(operand=op, code_bits=spec.bits, format=spec.format)
        if spec.format == "log2":
            extra["note"] = "log2 codes are stored as their values 0, ±2^e"
        tc = _int_tensor(self._path(layer, kind, t), codes, lo, hi, _describe_spec(op, spec),
                         **extra)
        self.last_codes[(layer, kind, letter)] = tc
        self._emit(tc, layer, kind, t)

    def _sr_bits(self, layer, kind, letter, op, spec, codes, st) -> np.ndarray:
        stream = self.stream.child(layer).child(op)
        groups = codes.shape[0] if op in GROUPED else 1
        first = stream.draws - groups
        if first < 0:
            raise RuntimeError(f"golden: stream {stream.path} has fewer draws than {op} needs")
        flat = codes.reshape(groups, -1)
        out = np.empty(flat.shape, np.uint32 if spec.sr_bits <= 32 else np.uint64)
        keys = []
        for g in range(groups):
            key = stream.draw(first + g).key
            keys.append(key)
            out[g] = element_random_bits(key, flat.shape[1], spec.sr_bits)
            if flat.shape[1]:                        # the NumPy hash equals the oracle
                for i in {0, flat.shape[1] - 1}:
                    ref = element_bits_reference(key, i) >> (64 - spec.sr_bits)
                    if int(out[g, i]) != ref:
                        raise RuntimeError("golden: vectorised element bits disagree with "
                                           "intsim.kernels.hashing")
        # the draw keys must reproduce the recorded codes where the quantizer input is known
        src = {("grad_in", "g"): "g_hadamard", ("grad_w", "g"): "g_hadamard",
               ("grad_in", "w"): "w_hadamard", ("grad_w", "a"): "a_hadamard"}.get((kind, letter))
        if src is not None and src in st:
            x = np.asarray(st[src][0]).astype(np.float32)
            xs = x.reshape(groups, *codes.shape[1:]) if op in GROUPED else x[None]
            for g in range(groups):
                q = _requantize(xs[g], spec, SRDraw(keys[g]))
                want = codes[g] if op in GROUPED else codes
                if not np.array_equal(q.codes.astype(np.int64), want.astype(np.int64)):
                    raise RuntimeError(f"golden: the re-derived SR draw of {layer}/{kind}/"
                                       f"{letter} does not reproduce the recorded codes")
        return out.reshape(codes.shape)

    # -- accumulator: tile partials, registers, tile sums --------------------------------
    def _acc(self, layer, kind, acc_value, st):
        acc: Optional[Accumulator] = getattr(self.nm, ACC_OF[kind])
        path = lambda t: self._path(layer, kind, t)          # noqa: E731
        if acc_value.dtype.kind not in "iu" or acc is None:
            self._emit(_float_tensor(path("acc"), acc_value, "float32 matmul result (this "
                                     "matmul is not integer in this datapath)"),
                       layer, kind, "acc")
            return
        left, right = self._operands(kind, st)
        (L, llo, lhi), (Rr, rlo, rhi) = left, right
        K = L.shape[-1]
        tile = K if acc.tile is None else max(1, min(acc.tile, K))
        n_tiles = -(-K // tile)
        plo, phi = _product_range((llo, lhi), (rlo, rhi))
        exact = Accumulator(bits=62, tile=None, mode="exact")
        reg_acc = Accumulator(bits=acc.bits, tile=None, mode=acc.mode, symmetric=acc.symmetric)
        partials, registers, sums = [], [], []
        total = np.zeros(acc_value.shape, np.int64)
        for t in range(n_tiles):
            sl = slice(t * tile, min(K, (t + 1) * tile))
            ls, rs = L[..., sl], Rr[..., sl, :]
            partials.append(int_matmul(ls, rs, exact))
            registers.append(int_matmul(ls, rs, reg_acc))
            total = _tile_sum(total + registers[-1], acc)
            sums.append(total.copy())
        if not np.array_equal(total, acc_value):
            raise RuntimeError(f"golden: the tile decomposition of {layer}/{kind} does not "
                               "reproduce the recorded accumulator result")
        part_rng = (tile * plo, tile * phi)
        if acc.mode == "exact":
            reg_rng = part_rng
        else:
            reg_rng = acc.range if acc.mode != "wrap" else (-(1 << (acc.bits - 1)),
                                                            (1 << (acc.bits - 1)) - 1)
        if acc.tile_sum_bits is not None:
            h = 1 << (acc.tile_sum_bits - 1)
            ts_rng = acc.tile_sum_range if acc.mode != "wrap" else (-h, h - 1)
        else:
            ts_rng = (n_tiles * reg_rng[0], n_tiles * reg_rng[1])
        common = dict(tile=tile, n_tiles=n_tiles, mode=acc.mode, acc_bits=acc.bits,
                      acc_symmetric=acc.symmetric, tile_sum_bits=acc.tile_sum_bits or 0)
        self._emit(_int_tensor(path("acc_partial"), np.stack(partials), *part_rng,
                               "exact sum of each K-tile (before the register limits it), "
                               "shape (n_tiles, *acc)", **common), layer, kind, "acc_partial")
        self._emit(_int_tensor(path("acc_register"), np.stack(registers), *reg_rng,
                               f"accumulator register at the end of each tile ({acc.mode}, "
                               f"{acc.bits} bits)", **common), layer, kind, "acc_register")
        ts_width = ("unbounded" if acc.tile_sum_bits is None
                    else f"{acc.tile_sum_bits} bits")
        self._emit(_int_tensor(path("acc_tile_sum"), np.stack(sums), *ts_rng,
                               f"tile-sum register after adding each tile ({ts_width})",
                               **common), layer, kind, "acc_tile_sum")
        self._emit(_int_tensor(path("acc"), acc_value, *ts_rng,
                               "matmul result (the final tile-sum register)", **common),
                   layer, kind, "acc")

    def _operands(self, kind, st):
        if kind == "fwd":
            a, w = st["a_codes"], st["w_codes"]
            return a, (w[0].T, w[1], w[2])
        left = st["g_codes"]
        if kind == "grad_in":
            right = st.get("w_codes", st.get("w_hadamard"))
        else:
            right = st.get("a_codes", st.get("a_hadamard"))
        return left, right


def _tile_sum(s: np.ndarray, acc: Accumulator) -> np.ndarray:
    """The tile-sum register TS applied to s = previous + tile result (NUMERICS.md §4)."""
    if acc.tile_sum_bits is None:
        return s
    b = acc.tile_sum_bits
    if acc.mode == "wrap":
        half = np.int64(1) << np.int64(b - 1)
        return ((s + half) & ((half << np.int64(1)) - np.int64(1))) - half
    lo, hi = acc.tile_sum_range
    return np.clip(s, lo, hi)


def _requantize(x: np.ndarray, spec: QuantSpec, draw: SRDraw):
    if spec.format == "log2":
        return quantize_log2(x, spec.bits, rng=draw, sr_bits=spec.sr_bits)
    return quantize(x, spec.bits, signed=spec.signed, rounding=spec.rounding, clip=spec.clip,
                    scale=spec.scale, rng=draw, sr_bits=spec.sr_bits, symmetric=spec.symmetric)


# ---------------------------------------------------------------------------- run
@dataclass
class GoldenResult:
    path: str
    n_tensors: int
    steps: int
    losses: list
    hex_manifest: Optional[str] = None


def _param_tensors(net, prefix: str, kind: str, step: int, what: str) -> list:
    out = []
    for name, p, _ in net.named_parameters():
        layer, pname = name.rsplit(".", 1) if "." in name else ("model", name)
        t = _float_tensor(f"{prefix}/{layer}/{kind}/{pname}", p, f"{what} {pname} (float32 "
                          "master copy)")
        t.attrs.update(step=step, layer=layer, kind=kind, tensor=pname)
        out.append(t)
    return out


def run_golden(datapath: Union[str, os.PathLike, Numerics, Datapath],
               model: str = "fcnet:16,16,16,4", batch: int = 8, steps: int = 2,
               seed: Optional[int] = None, lr: float = LR,
               momentum: float = MOMENTUM) -> tuple[list, dict]:
    """Run the steps and return (tensors in execution order, root attributes)."""
    from intsim import __version__
    from intsim.core.datapath import dumps
    from intsim.nn.losses import cross_entropy
    from intsim.models.networks import FCNet, IncrementalNet
    from intsim.nn.module import child_seed
    from intsim.nn.optim import SGD
    from intsim.core.linear_op import RECORDER

    dp = resolve(datapath)
    spec = parse_model(model)
    for name, v, lo in (("batch", batch, 1), ("steps", steps, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if seed is None:
        seed = dp.seed if dp.seed is not None else 0
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    sr_seed = dp.seed if dp.seed is not None else seed
    nm = dp.numerics
    backbone = FCNet(spec.in_dim, spec.hidden, spec.feature, numerics=nm, seed=seed)
    net = IncrementalNet(backbone, spec.classes, numerics=nm, seed=child_seed(seed, 1))
    stream = SRStream(sr_seed)
    net.set_rng(stream)
    opt = SGD(net, lr=lr, momentum=momentum)
    data = np.random.default_rng(seed)

    tensors: list[Tensor] = _param_tensors(net, "init", "params", -1, "initial")
    losses = []
    for step in range(steps):
        x = data.uniform(-1.0, 1.0, (batch, spec.in_dim)).astype(np.float32)
        labels = data.integers(0, spec.classes, batch).astype(np.int64)
        pre = f"step_{step:03d}"
        tx = _float_tensor(f"{pre}/input/batch/x", x, "synthetic input, uniform [-1, 1) "
                           "float32 (default_rng(seed).uniform, one draw per step)")
        ty = _int_tensor(f"{pre}/input/batch/labels", labels, 0, spec.classes - 1,
                         "class labels (default_rng(seed).integers, after x)")
        for t, n in ((tx, "x"), (ty, "labels")):
            t.attrs.update(step=step, layer="input", kind="batch", tensor=n)
            tensors.append(t)
        rec = _StepRecorder(tensors, step, nm, stream)
        opt.zero_grad()
        token = RECORDER.set(rec)
        try:
            logits = net.forward(x)
            loss, grad = cross_entropy(logits, labels)
            n_before = len(tensors)
            net.backward(grad)
        finally:
            RECORDER.reset(token)
        tl = _float_tensor(f"{pre}/loss/cross_entropy/logits", logits,
                           "head output + bias (float32)")
        tg = _float_tensor(f"{pre}/loss/cross_entropy/grad_logits", grad,
                           "dL/dlogits = (softmax - onehot)/B (float32)", loss=float(loss))
        for t, n in ((tl, "logits"), (tg, "grad_logits")):
            t.attrs.update(step=step, layer="loss", kind="cross_entropy", tensor=n)
        tensors[n_before:n_before] = [tl, tg]      # the loss comes between fwd and bwd
        opt.step()
        tensors.extend(_param_tensors(net, pre, "sgd", step, "after the SGD step:"))
        losses.append(float(loss))

    for i, t in enumerate(tensors):
        t.attrs["op_index"] = i
    root = dict(format=FORMAT, format_version=FORMAT_VERSION, intsim_version=__version__,
                datapath=dumps(nm, seed=dp.seed), datapath_source=dp.text or "",
                numerics=nm.name, model=str(spec),
                seed=seed, sr_seed=sr_seed, batch=batch, steps=steps, lr=lr,
                momentum=momentum, weight_decay=0.0, loss="cross_entropy (batch mean)",
                inputs="x ~ default_rng(seed).uniform(-1, 1, (batch, IN)) as float32, then "
                       "labels ~ .integers(0, CLASSES, batch), per step",
                init="FCNet(IN, HIDDEN, FEATURE, seed=seed); head seed child_seed(seed, 1); "
                     "SRStream(sr_seed) for every layer",
                losses=np.array(losses, np.float64), n_tensors=len(tensors))
    return tensors, root


def write_hdf5(tensors: list, root: dict, out: str) -> None:
    """Write the tensors (already in execution order) and root attributes atomically."""
    import h5py

    from intsim.formats.atomic import atomic_path
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in root.items():
                f.attrs[k] = v
            order = [t.path for t in tensors]
            f.create_dataset("op_order", data=np.array(order, dtype=h5py.string_dtype()))
            for t in tensors:
                d = f.create_dataset(t.path, data=t.value)
                for k, v in t.attrs.items():
                    d.attrs[k] = 0 if v is None else v
                d.attrs["dtype"] = t.attrs["hw_type"]


def write_golden(datapath, model: str = "fcnet:16,16,16,4", batch: int = 8, steps: int = 2,
                 seed: Optional[int] = None, out: str = "golden.h5",
                 hex_dir: Optional[str] = None, pack_int4: bool = False,
                 lr: float = LR, momentum: float = MOMENTUM) -> GoldenResult:
    """Run the golden steps and write `out` (and, with hex_dir, the $readmemh files)."""
    tensors, root = run_golden(datapath, model, batch, steps, seed, lr, momentum)
    write_hdf5(tensors, root, out)
    manifest = write_hex(out, hex_dir, pack_int4) if hex_dir else None
    return GoldenResult(out, len(tensors), steps, list(root["losses"]), manifest)


# ------------------------------------------------------------------------- reading
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


# ----------------------------------------------------------------------------- hex
def to_hex_lines(values: np.ndarray, bits: int, encoding: str, pack_int4: bool = False
                 ) -> tuple[list, int, bool]:
    """(lines, hex digits per line, packed) of a tensor in C order.

    Integers: two's complement (or unsigned) at `bits`, ceil(bits/4) hex digits; float32:
    the IEEE-754 binary32 pattern, 8 digits. pack_int4 and bits ≤ 4: two values per byte,
    element 2j in the low nibble, 2j+1 in the high nibble (0 when the count is odd).
    """
    flat = np.asarray(values).reshape(-1)
    if encoding == "ieee754_binary32":
        pats = flat.astype(np.float32).view(np.uint32).astype(np.uint64)
        return [f"{int(v):08x}" for v in pats], 8, False
    mask = (1 << bits) - 1
    pats = [int(v) & mask for v in flat.astype(np.int64)]
    if pack_int4 and bits <= 4:
        if len(pats) % 2:
            pats.append(0)
        return [f"{(pats[j] & 0xF) | ((pats[j + 1] & 0xF) << 4):02x}"
                for j in range(0, len(pats), 2)], 2, True
    d = max(1, -(-bits // 4))
    return [f"{v:0{d}x}" for v in pats], d, False


def write_hex(golden_path: str, hex_dir: str, pack_int4: bool = False) -> str:
    """One $readmemh text file per tensor of a golden file, plus manifest.json; returns its path.

    File names: NNNNN_<path with '/' → '__'>.hex, NNNNN = op_index (execution order).
    """
    import h5py

    from intsim.formats.atomic import atomic_write_text
    os.makedirs(hex_dir, exist_ok=True)
    entries = []
    with h5py.File(golden_path, "r") as f:
        for path in read_op_order(f):
            d = f[path]
            a = d.attrs
            bits, enc = int(a["bits"]), str(a["encoding"])
            lines, digits, packed = to_hex_lines(d[()], bits, enc, pack_int4)
            fname = f"{int(a['op_index']):05d}_{path.replace('/', '__')}.hex"
            with open(os.path.join(hex_dir, fname), "w", encoding="ascii") as out:
                out.write("\n".join(lines) + ("\n" if lines else ""))
            entries.append(dict(file=fname, path=path, op_index=int(a["op_index"]),
                                shape=list(d.shape), count=int(np.prod(d.shape, dtype=np.int64)),
                                lines=len(lines), bits=bits, signed=bool(a["signed"]),
                                encoding=enc, hw_type=str(a["hw_type"]), hex_digits=digits,
                                packed_int4=packed))
        root = {k: (v.item() if hasattr(v, "item") and np.ndim(v) == 0 else
                    v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
    manifest = dict(
        format="intsim-golden-hex", format_version=1, golden=os.path.basename(golden_path),
        model=root.get("model"), numerics=root.get("numerics"), steps=root.get("steps"),
        pack_int4=pack_int4,
        convention=("one value per line, C (row-major) order, first line = element 0; "
                    "integers as two's complement (signed) or plain binary (unsigned) at the "
                    "tensor's bits, ceil(bits/4) hex digits, no prefix; float32 tensors as "
                    "their IEEE-754 binary32 bit pattern (8 digits); packed_int4: two 4-bit "
                    "values per byte, element 2j in the low nibble, high nibble 0 when the "
                    "count is odd"),
        tensors=entries)
    mpath = os.path.join(hex_dir, "manifest.json")
    atomic_write_text(mpath, json.dumps(manifest, indent=1) + "\n")
    return mpath


def read_hex(path: str, bits: int, encoding: str, count: Optional[int] = None,
             packed_int4: bool = False) -> np.ndarray:
    """Inverse of to_hex_lines for one file (int64 values or float32)."""
    with open(path, encoding="ascii") as f:
        words = [int(w, 16) for w in f.read().split()]
    if encoding == "ieee754_binary32":
        return np.array(words, np.uint32).view(np.float32)
    if packed_int4:
        words = [v for b in words for v in (b & 0xF, b >> 4)]
        if count is not None:
            words = words[:count]
    if encoding == "twos_complement":
        half = 1 << (bits - 1)
        words = [w - (1 << bits) if w >= half else w for w in words]
    return np.array(words, np.int64)
