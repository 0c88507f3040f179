"""The golden tensors of one training step, from the linear operator's records.

`StepRecorder` is installed as intsim.core.linear_op.RECORDER during a golden step. It turns
each record (quantizer input x, codes, scale, clamp point m, Hadamard outputs, matmul results)
into golden Tensors in execution order, adds what the operator does not record — the random
bits R each stochastically rounded element consumed (re-derived from the SR stream), the value
v = fl32(clamp(x, −m, m)/scale) each code was rounded from, and for every integer matmul the
exact tile partials, the register after each tile and the tile-sum register (recomputed with
int_matmul) — checks each of them against the recorded result, and writes a descriptor of
every integer matmul (`matmuls`: the attributes of its HDF5 group).
"""
from __future__ import annotations

import fnmatch
from typing import Optional, Sequence

import numpy as np

from intsim.core.accumulator import Accumulator, int_matmul, tile_sum_register
from intsim.core.hadamard import rule_block_size
from intsim.core.modes import PRODUCTS, MatmulKind, QuantFormat, Rounding, split_label
from intsim.core.numerics import Numerics
from intsim.core.quantizer import QuantSpec, quantize_spec
from intsim.core.ranges import code_dtype, code_range, hadamard_range, log2_top, product_range, \
    tile_starts
from intsim.core.rng import SRDraw, SRStream, element_random_bits
from intsim.formats.golden_file import Tensor, float_tensor, int_tensor
from intsim.kernels.hashing import element_bits_reference

#: the layout of each product's operands as stored (G groups, reduction length K)
LAYOUTS = {MatmulKind.FWD: ("G,M,K", "N,K"), MatmulKind.GRAD_IN: ("G,M,K", "K,N"),
           MatmulKind.GRAD_W: ("G,M,K", "G,K,N")}
RIGHT_AXIS = {"N,K": "1 of right (N,K)", "K,N": "0 of right (K,N)", "G,K,N": "1 of right (G,K,N)"}
RESCALE = {MatmulKind.FWD: "y = R(acc; s_w, s_a; 1)",
           MatmulKind.GRAD_IN: "dx = R(acc; s_g, s_w, s_w_fwd; p)",
           MatmulKind.GRAD_W: "dW = Σ_g R(acc[g]; s_g, s_a, s_a_fwd; p)"}


def spec_range(spec: QuantSpec, codes: np.ndarray) -> tuple[int, int]:
    """(qmin, qmax) of the codes of one quantization call under `spec`."""
    if spec.format == QuantFormat.LOG2:
        top = log2_top(spec.bits)
        return -top, top
    signed = spec.signed
    if signed is None:                     # auto: what this call chose (the dtype tells)
        if codes.dtype.itemsize > code_dtype(spec.bits, True).itemsize:
            # groups that chose differently were stacked into a wider type: the union
            return code_range(spec.bits, True, spec.symmetric)[0], (1 << spec.bits) - 1
        signed = codes.dtype.kind == "i"
    return code_range(spec.bits, bool(signed), spec.symmetric)


def describe_spec(op: str, spec: QuantSpec) -> str:
    scale = ("dynamic" if spec.scale is None else spec.scale)
    sr = f" r={spec.sr_bits}" if spec.stochastic else ""
    fmt = " log2" if spec.format == QuantFormat.LOG2 else ""
    return f"{op}: {spec.bits}-bit{fmt} {spec.rounding}{sr}, clip {spec.clip}, scale {scale}"


def round_v(v: np.ndarray, rounding: str, R: Optional[np.ndarray], r: int, qmin: int,
            qmax: int) -> np.ndarray:
    """Codes of NUMERICS.md §2.1 from float32 v (exact float64 arithmetic): the rounding rule,
    then the clamp to [qmin, qmax]. v is first limited to [qmin − 1, qmax + 1], which changes
    no code (and keeps the integers small)."""
    v = np.clip(np.asarray(v, np.float64), qmin - 1, qmax + 1)
    if rounding == Rounding.NEAREST:
        q = np.rint(v)
    elif rounding == Rounding.HALF_AWAY:
        q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    elif rounding == Rounding.HALF_UP:
        q = np.floor(v + 0.5)
    elif rounding == Rounding.FLOOR:
        q = np.floor(v)
    else:
        t = np.floor(np.ldexp(v, r)).astype(np.int64)
        q = (t + R.astype(np.int64)) >> r
    return np.clip(np.asarray(q, np.int64), qmin, qmax)


def scaled_values(x: np.ndarray, m, scale, grouped: bool) -> np.ndarray:
    """v = fl32(clamp(x, −m, m) / scale), per group (m, scale of shape (G,)) or per tensor."""
    x = np.asarray(x, np.float32)
    if not grouped:
        return (np.clip(x, -np.float32(m), np.float32(m)) / np.float32(scale)).astype(np.float32)
    shape = (-1,) + (1,) * (x.ndim - 1)
    mm = np.asarray(m, np.float32).reshape(shape)
    return (np.clip(x, -mm, mm) / np.asarray(scale, np.float32).reshape(shape)).astype(np.float32)


def sr_bits_tensor(path: str, R: np.ndarray, spec: QuantSpec, op: str) -> Tensor:
    return Tensor(path, R, dict(bits=spec.sr_bits, signed=False, encoding="unsigned",
                                hw_type=f"uint{spec.sr_bits}", operand=op,
                                description=f"{op}: the {spec.sr_bits} random bits R added "
                                            f"below the kept LSB of each element (NUMERICS.md "
                                            f"§2.1, §3)"))


def clamp_tensors(path_m: str, path_v: str, m, v, op: str) -> list:
    """The clamp point m and the scaled values v of one operand (float32 tensors)."""
    return [float_tensor(path_m, m, f"{op}: clamp point m (|x| > m is clamped before the "
                                    "division; inf: fixed scale, no clamp), one per group",
                         operand=op),
            float_tensor(path_v, v, f"{op}: v = fl32(clamp(x, -m, m) / scale), the value each "
                                    "code is rounded from (NUMERICS.md §2 step 3)", operand=op)]


def group_draw_bits(stream: SRStream, groups: int, count: int, spec: QuantSpec
                    ) -> tuple[np.ndarray, list]:
    """(R (groups, count), draw keys) of the last `groups` draws of `stream`."""
    first = stream.draws - groups
    if first < 0:
        raise RuntimeError(f"golden: stream {stream.path} has fewer draws than it needs")
    out = np.empty((groups, count), np.uint32 if spec.sr_bits <= 32 else np.uint64)
    keys = []
    for g in range(groups):
        key = stream.draw(first + g).key
        keys.append(key)
        out[g] = element_random_bits(key, count, spec.sr_bits)
        for i in {0, count - 1} if count else ():         # the NumPy hash equals the oracle
            if int(out[g, i]) != element_bits_reference(key, i) >> (64 - spec.sr_bits):
                raise RuntimeError("golden: vectorised element bits disagree with "
                                   "intsim.kernels.hashing")
    return out, keys


def _grouped(role, kind, codes: np.ndarray) -> bool:
    """Whether this call quantized the operand per group: a grouped role, except a forward
    activation quantized once for the whole batch (act_scale per_batch: its codes keep the
    input's shape, e.g. (B, C, H, W), and are unfolded afterwards into `a_cols`)."""
    return role.grouped and not (kind == MatmulKind.FWD and codes.ndim != 3)


class StepRecorder:
    """Receives the linear operator's records of one training step; emits golden Tensors in
    order (into `out`) and one descriptor per integer matmul (into `matmuls`)."""

    def __init__(self, out: list, step: int, numerics: Numerics, stream: SRStream,
                 matmuls: Optional[dict] = None):
        self.out, self.step, self.nm, self.stream = out, step, numerics, stream
        self.matmuls = {} if matmuls is None else matmuls
        self.state: dict[tuple, dict] = {}       # (layer, kind) -> {name: (array, lo, hi)}
        self.fwd_codes: dict[tuple, tuple] = {}  # (layer, letter) -> (codes, lo, hi)
        self.last_codes: dict[tuple, Tensor] = {}  # (layer, kind, letter) -> codes Tensor

    def _path(self, layer, kind, tensor):
        return f"step_{self.step:03d}/{layer}/{kind}/{tensor}"

    def _emit(self, t: Tensor, layer, kind, tensor):
        t.attrs.update(step=self.step, layer=layer, kind=kind, tensor=tensor)
        self.out.append(t)

    def record(self, name: str, value) -> None:
        """One record of the linear operator: name = a product or operand label (modes.label)
        + "/" + what (x, codes, scale, m, acc, y, dx, dW, g_hadamard, …)."""
        head, _, what = name.rpartition("/")
        layer, kind, letter = split_label(head)
        layer = layer or "layer"
        tensor = f"{letter}_{what}" if letter else what
        value = np.array(value, copy=True)
        st = self.state.setdefault((layer, kind), {})
        path = self._path(layer, kind, tensor)
        if letter and what == "x":
            st[tensor] = (value, None, None)
            if kind == MatmulKind.FWD:             # backward inputs are the *_hadamard tensors
                role = PRODUCTS[kind].operand(letter)
                self._emit(float_tensor(path, value, f"{role.field}: the quantizer's input x "
                                        f"({role.text}, float32)", operand=role.field),
                           layer, kind, tensor)
        elif letter and what == "codes":
            self._codes(layer, kind, letter, value, st)
        elif letter and what == "scale":
            role = PRODUCTS[kind].operand(letter)
            st[tensor] = (value, None, None)
            codes = self.last_codes.pop((layer, kind, letter), None)
            if codes is not None:
                codes.attrs["scale"] = np.asarray(value, np.float32)
            self._emit(float_tensor(path, value, f"{role.field} scale (float32, one per group)"
                                    if role.grouped else f"{role.field} scale (float32)",
                                    operand=role.field), layer, kind, tensor)
        elif letter and what == "m":
            self._clamp_and_v(layer, kind, letter, value, st)
        elif letter and what == "cols":              # per-batch codes unfolded (im2col)
            _, lo, hi = st[f"{letter}_codes"]
            st[tensor] = (value, lo, hi)
            self.fwd_codes[(layer, letter)] = (value, lo, hi)
            self._emit(int_tensor(path, value, lo, hi, "the batch's activation codes unfolded "
                                  "(im2col) into the matmul's left operand (G, L, K); zero "
                                  "padding is code 0"), layer, kind, tensor)
        elif tensor in ("w_hadamard", "a_hadamard"):
            self._hadamard(layer, kind, tensor, value, st, path)
        elif tensor == "g_hadamard":
            st[tensor] = (value, None, None)
            axis = "N (G·H_out)" if kind == MatmulKind.GRAD_IN else "the batch (Gᵀ·H_bs)"
            self._emit(float_tensor(path, value, f"output gradient Hadamard-transformed along "
                                    f"{axis}, float32"), layer, kind, tensor)
        elif tensor == "acc":
            self._acc(layer, kind, value, st)
            self.state.pop((layer, kind), None)
        elif tensor in ("y", "dx", "dW"):
            desc = {"y": "forward output fl32(acc)·fl32(s_a·s_w), before any bias",
                    "dx": "input gradient dL/dx (float32, after the straight-through mask)",
                    "dW": "weight gradient dL/dW (float32, after the straight-through mask)"}
            self._emit(float_tensor(path, value, desc[tensor]), layer, kind, tensor)
        elif value.dtype.kind in "iu":           # anything new the operator may record
            self._emit(int_tensor(path, value, int(value.min(initial=0)),
                                  int(value.max(initial=0)), tensor), layer, kind, tensor)
        else:
            self._emit(float_tensor(path, value, tensor), layer, kind, tensor)

    def _hadamard(self, layer, kind, tensor, value, st, path):
        letter = tensor[0]
        src = self.fwd_codes.get((layer, letter))
        n_src = (src[0].shape[0] if letter == "w" else src[0].shape[1]) if src else None
        p = rule_block_size(n_src, self.nm.hadamard) if n_src else 1
        st["block"] = p
        if value.dtype.kind in "iu" and src is not None:
            lo, hi = hadamard_range(src[1], src[2], p)
            st[tensor] = (value, lo, hi)
            what = "H_out·w (forward weight codes, along N)" if letter == "w" else \
                "H_bs·a (forward activation codes, along the batch)"
            self._emit(int_tensor(path, value, lo, hi, f"{what}, block {p}, exact", block=p),
                       layer, kind, tensor)
        else:
            st[tensor] = (value, None, None)
            self._emit(float_tensor(path, value, f"{tensor} (float32 operand)"), layer, kind,
                       tensor)

    # -- operand codes (+ the random bits they consumed, the values they were rounded from) --
    def _codes(self, layer, kind, letter, codes, st):
        role = PRODUCTS[kind].operand(letter)
        op = role.field
        spec: QuantSpec = getattr(self.nm, op)
        if spec.stochastic:
            R = self._sr_bits(layer, kind, role, spec, codes, st)
            t = f"{letter}_sr_bits"
            st[t] = (R, None, None)
            self._emit(sr_bits_tensor(self._path(layer, kind, t), R, spec, op), layer, kind, t)
        lo, hi = spec_range(spec, codes)
        st[f"{letter}_codes"] = (codes, lo, hi)
        if kind == MatmulKind.FWD:
            self.fwd_codes[(layer, letter)] = (codes, lo, hi)
        t = f"{letter}_codes"
        extra = dict(operand=op, code_bits=spec.bits, format=str(spec.format),
                     rounding=str(spec.rounding), sr_bits=spec.sr_bits if spec.stochastic else 0)
        if spec.format == QuantFormat.LOG2:
            extra["note"] = "log2 codes are stored as their values 0, ±2^e"
        tc = int_tensor(self._path(layer, kind, t), codes, lo, hi, describe_spec(op, spec),
                        **extra)
        self.last_codes[(layer, kind, letter)] = tc
        self._emit(tc, layer, kind, t)

    def _sr_bits(self, layer, kind, role, spec, codes, st) -> np.ndarray:
        op, letter = role.field, role.letter
        stream = self.stream.child(layer).child(op)
        grouped = _grouped(role, kind, codes)
        groups = codes.shape[0] if grouped else 1
        out, keys = group_draw_bits(stream, groups, codes.size // max(groups, 1), spec)
        # the draw keys must reproduce the recorded codes from the quantizer's input
        src = f"{letter}_x"
        if src in st:
            x = np.asarray(st[src][0]).astype(np.float32)
            xs = x.reshape(groups, *codes.shape[1:]) if grouped else x[None]
            for g in range(groups):
                q = quantize_spec(xs[g], spec, SRDraw(keys[g]))
                want = codes[g] if grouped else codes
                if not np.array_equal(q.codes.astype(np.int64), want.astype(np.int64)):
                    raise RuntimeError(f"golden: the re-derived SR draw of {layer}/{kind}/"
                                       f"{letter} does not reproduce the recorded codes")
        return out.reshape(codes.shape)

    def _clamp_and_v(self, layer, kind, letter, m, st):
        """Emit m and v of an integer-format operand; check that v rounds to its codes."""
        role = PRODUCTS[kind].operand(letter)
        spec: QuantSpec = getattr(self.nm, role.field)
        if spec is None or spec.format == QuantFormat.LOG2 or f"{letter}_x" not in st:
            return
        x = st[f"{letter}_x"][0]
        scale = st[f"{letter}_scale"][0]
        codes, lo, hi = st[f"{letter}_codes"]
        grouped = _grouped(role, kind, codes)
        v = scaled_values(x, m, scale, grouped)
        R = st.get(f"{letter}_sr_bits", (None,))[0]
        if grouped:                         # auto sign: each group's own code range
            ok = all(np.array_equal(round_v(v[g], spec.rounding, None if R is None else R[g],
                                            spec.sr_bits, *spec_range(spec, codes[g])),
                                    codes[g].astype(np.int64)) for g in range(codes.shape[0]))
        else:
            ok = np.array_equal(round_v(v, spec.rounding, R, spec.sr_bits, lo, hi),
                                codes.astype(np.int64))
        if not ok:
            raise RuntimeError(f"golden: v of {layer}/{kind}/{letter} does not round to the "
                               "recorded codes (NUMERICS.md §2.1)")
        st[f"{letter}_v"] = (v, None, None)
        for t in clamp_tensors(self._path(layer, kind, f"{letter}_m"),
                               self._path(layer, kind, f"{letter}_v"), m, v, role.field):
            self._emit(t, layer, kind, t.path.rsplit("/", 1)[1])

    # -- accumulator: tile partials, registers, tile sums, the matmul descriptor ------------
    def _acc(self, layer, kind, acc_value, st):
        acc: Optional[Accumulator] = getattr(self.nm, PRODUCTS[kind].accumulator)
        path = lambda t: self._path(layer, kind, t)          # noqa: E731
        if acc_value.dtype.kind not in "iu" or acc is None:
            self._emit(float_tensor(path("acc"), acc_value, "float32 matmul result (this "
                                    "matmul is not integer in this datapath)"),
                       layer, kind, "acc")
            return
        (lname, L, llo, lhi), (rname, Rr, rlo, rhi) = self._operands(kind, st)
        K = L.shape[-1]
        tile = acc.tile_for(K)
        n_tiles = len(tile_starts(K, tile))
        plo, phi = product_range((llo, lhi), (rlo, rhi))
        partials, registers, sums = tile_decomposition(L, Rr, acc)
        if not np.array_equal(sums[-1] if sums else np.zeros_like(acc_value), acc_value):
            raise RuntimeError(f"golden: the tile decomposition of {layer}/{kind} does not "
                               "reproduce the recorded accumulator result")
        part_rng = (tile * plo, tile * phi)
        reg_rng = acc.register_values() or part_rng
        ts_rng = acc.tile_sum_values() or (n_tiles * reg_rng[0], n_tiles * reg_rng[1])
        common = dict(tile=tile, n_tiles=n_tiles, mode=str(acc.mode), acc_bits=acc.bits,
                      acc_symmetric=acc.symmetric, tile_sum_bits=acc.tile_sum_bits or 0)
        self._emit(int_tensor(path("acc_partial"), np.stack(partials), *part_rng,
                              "exact sum of each K-tile (before the register limits it), "
                              "shape (n_tiles, *acc)", **common), layer, kind, "acc_partial")
        self._emit(int_tensor(path("acc_register"), np.stack(registers), *reg_rng,
                              f"accumulator register at the end of each tile ({acc.mode}, "
                              f"{acc.bits} bits)", **common), layer, kind, "acc_register")
        ts_width = "unbounded" if acc.tile_sum_bits is None else f"{acc.tile_sum_bits} bits"
        self._emit(int_tensor(path("acc_tile_sum"), np.stack(sums), *ts_rng,
                              f"tile-sum register after adding each tile ({ts_width})",
                              **common), layer, kind, "acc_tile_sum")
        self._emit(int_tensor(path("acc"), acc_value, *ts_rng,
                              "matmul result (the final tile-sum register)", **common),
                   layer, kind, "acc")
        group = f"step_{self.step:03d}/{layer}/{kind}"
        self.matmuls[group] = matmul_descriptor(
            group, self.step, layer, kind, acc, K, L.shape, Rr.shape, lname, rname, st,
            st.get("block", 1), self.nm.hadamard, self.nm.rescale_order)

    def _operands(self, kind, st):
        """((name, left (G, M, K), lo, hi), (name, right, lo, hi)); fwd w as (K, N)."""
        if kind == MatmulKind.FWD:
            name = "a_cols" if "a_cols" in st else "a_codes"
            w = st["w_codes"]
            return (name, *st[name]), ("w_codes", w[0].T, w[1], w[2])
        letter = "w" if kind == MatmulKind.GRAD_IN else "a"
        name = f"{letter}_codes" if f"{letter}_codes" in st else f"{letter}_hadamard"
        return ("g_codes", *st["g_codes"]), (name, *st[name])


def tile_decomposition(L: np.ndarray, R: np.ndarray, acc: Accumulator) -> tuple[list, list, list]:
    """Per K-tile: exact partial sums, the register after the tile, the tile-sum register
    (NUMERICS.md §8), of L (…, M, K) · R (K, N) or (…, K, N) through `acc`."""
    K = L.shape[-1]
    tile = acc.tile_for(K)
    exact = Accumulator(bits=62, tile=None, mode="exact")
    reg_acc = Accumulator(bits=acc.bits, tile=None, mode=acc.mode, symmetric=acc.symmetric)
    partials, registers, sums = [], [], []
    total = None
    for k0 in tile_starts(K, tile):
        ls, rs = L[..., k0:k0 + tile], R[..., k0:k0 + tile, :]
        partials.append(int_matmul(ls, rs, exact))
        registers.append(int_matmul(ls, rs, reg_acc))
        total = tile_sum_register((0 if total is None else total) + registers[-1], acc)
        sums.append(total.copy())
    return partials, registers, sums


def matmul_descriptor(group: str, step: int, layer: str, kind: MatmulKind, acc: Accumulator,
                      K: int, lshape: tuple, rshape: tuple, lname: str, rname: str, st: dict,
                      block: int, rule, rescale_order=None) -> dict:
    """The attributes of an integer matmul's HDF5 group (formats.golden_file documents them)."""
    prod = PRODUCTS[kind]
    llay, rlay = LAYOUTS[kind]
    G, M = (lshape[0], lshape[1]) if len(lshape) == 3 else (1, lshape[0])
    N = rshape[-1]
    tile = acc.tile_for(K)
    p = lambda t: f"{group}/{t}" if t in st else ""           # noqa: E731
    lo, hi = acc.register_values() or (0, 0)
    ts_lo, ts_hi = acc.tile_sum_values() or (0, 0)
    ll, rl = prod.left.letter, prod.right.letter
    return dict(
        matmul=group, step=step, layer=layer, kind=str(kind), label=f"{layer}/{kind}",
        text=prod.text, left=f"{group}/{lname}", right=f"{group}/{rname}",
        left_operand=prod.left.field, right_operand=prod.right.field if rname.endswith(
            "codes") else f"{prod.right.reuses} (Hadamard-transformed, not requantized)",
        left_layout=llay, right_layout=rlay, out_layout="G,M,N",
        tiles_layout="T,G,M,N", G=G, M=M, K=K, N=int(N),
        reduction=f"K = {prod.reduces}: the last axis of left; axis {RIGHT_AXIS[rlay]}",
        accumulator=prod.accumulator, mode=str(acc.mode), acc_bits=acc.bits,
        acc_symmetric=acc.symmetric, tile_configured=acc.tile or 0, tile=tile,
        n_tiles=len(tile_starts(K, tile)), tile_sum_bits=acc.tile_sum_bits or 0,
        register_range=np.array([lo, hi], np.int64),
        tile_sum_range=np.array([ts_lo, ts_hi], np.int64),
        hadamard_rule=str(rule) if rule is not None else "none", hadamard_block=int(block),
        left_scale=p(f"{ll}_scale"), right_scale=p(f"{rl}_scale"),
        left_sr_bits=p(f"{ll}_sr_bits"), right_sr_bits=p(f"{rl}_sr_bits"),
        left_v=p(f"{ll}_v"), right_v=p(f"{rl}_v"),
        left_codes=p(f"{ll}_codes"), right_codes=p(f"{rl}_codes"),
        left_m=f"{group}/{ll}_m" if f"{ll}_v" in st else "",
        right_m=f"{group}/{rl}_m" if f"{rl}_v" in st else "",
        partial=f"{group}/acc_partial", register=f"{group}/acc_register",
        tile_sum=f"{group}/acc_tile_sum", result=f"{group}/acc",
        rescale=(f"{RESCALE[kind]}, R of NUMERICS.md §6 in the order {rescale_order}"
                 if rescale_order is not None else "none (integer vectors)"))


def select_matmuls(tensors: list, matmuls: dict, select: Sequence[str]) -> tuple[list, dict]:
    """Keep the tensors of matmuls whose label matches a glob of `select` (and every tensor
    that belongs to no matmul); a glob matching no matmul label is a ValueError."""
    if not select:
        return tensors, matmuls
    labels = {f"{t.attrs['layer']}/{t.attrs['kind']}" for t in tensors
              if t.attrs.get("kind") in MatmulKind.values()}
    for glob in select:
        if not any(fnmatch.fnmatchcase(lab, glob) for lab in labels):
            raise ValueError(f"select: {glob!r} matches no matmul label (layer/kind); the "
                             f"labels are {', '.join(sorted(labels))}")

    def keep(t):
        if t.attrs.get("kind") not in MatmulKind.values():
            return True
        return any(fnmatch.fnmatchcase(f"{t.attrs['layer']}/{t.attrs['kind']}", g)
                   for g in select)
    kept = [t for t in tensors if keep(t)]
    groups = {g: d for g, d in matmuls.items() if any(fnmatch.fnmatchcase(d["label"], s)
                                                      for s in select)}
    return kept, groups
