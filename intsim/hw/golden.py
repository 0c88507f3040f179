"""Golden vectors: every intermediate of a few seeded training steps, for hardware test benches.

    write_golden(datapath, "fcnet:16,16,16,4", batch=8, steps=2, seed=0, out="golden.h5",
                 hex_dir="hex/")

runs S steps of SGD on an FCNet backbone + IncrementalNet head with the datapath's numerics on
every layer, seeded synthetic inputs, and writes one HDF5 file (layout below). Every
intermediate of every quantized layer is captured through intsim.core.linear_op.RECORDER; the
golden writer adds, for every integer matmul, the per-tile partial sums before and after the
accumulator register and the running tile-sum register values (recomputed from the recorded
operand codes with intsim.int_matmul, and checked to end at the recorded result), and for
every stochastically rounded operand the r random bits each element consumed (re-derived
from the SR stream, and checked to reproduce the recorded codes).

The file layout is documented in intsim.formats.golden_file.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np

from intsim._version import __version__
from intsim.core.accumulator import Accumulator, int_matmul, tile_sum_register
from intsim.core.hadamard import rule_block_size
from intsim.core.linear_op import RECORDER
from intsim.core.modes import PRODUCTS, MatmulKind, QuantFormat, split_label
from intsim.core.numerics import Numerics, dumps
from intsim.core.quantizer import QuantSpec, quantize_spec
from intsim.core.ranges import code_dtype, code_range, hadamard_range, log2_top, product_range, tile_starts
from intsim.core.resolve import NumericsSource, resolve_numerics
from intsim.core.rng import SRDraw, SRStream, element_random_bits
from intsim.formats.golden_file import FORMAT, FORMAT_VERSION, Tensor, float_tensor, int_tensor, write_hdf5
from intsim.formats.hexfile import write_hex
from intsim.kernels.hashing import element_bits_reference
from intsim.models.networks import FCNet, IncrementalNet
from intsim.nn.module import child_seed
from intsim.nn.optim import SGD
from intsim.nn.training import loss_step, sgd_step

LR, MOMENTUM = 0.01, 0.9
DEFAULT_CLASSES = 10


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


# ----------------------------------------------------------------- ranges of recorded codes
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


# ----------------------------------------------------------------------- the records
def _describe_spec(op: str, spec: QuantSpec) -> str:
    scale = ("dynamic" if spec.scale is None else spec.scale)
    sr = f" r={spec.sr_bits}" if spec.stochastic else ""
    fmt = " log2" if spec.format == QuantFormat.LOG2 else ""
    return (f"{op}: {spec.bits}-bit{fmt} {spec.rounding}{sr}, clip {spec.clip}, scale {scale}")


class _StepRecorder:
    """Receives the linear operator's records of one training step; emits golden Tensors in order."""

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
        """One record of the linear operator: name = a product or operand label (modes.label)
        + "/" + what (codes, scale, acc, y, dx, dW, g_hadamard, …)."""
        head, _, what = name.rpartition("/")
        layer, kind, letter = split_label(head)
        layer = layer or "layer"
        tensor = f"{letter}_{what}" if letter else what
        value = np.array(value, copy=True)
        st = self.state.setdefault((layer, kind), {})
        path = self._path(layer, kind, tensor)
        if letter and what == "codes":
            self._codes(layer, kind, letter, value, st)
        elif letter and what == "scale":
            role = PRODUCTS[kind].operand(letter)
            codes = self.last_codes.pop((layer, kind, letter), None)
            if codes is not None:
                codes.attrs["scale"] = np.asarray(value, np.float32)
            self._emit(float_tensor(path, value, f"{role.field} scale (float32, one per group)"
                                    if role.grouped else f"{role.field} scale (float32)",
                                    operand=role.field), layer, kind, tensor)
        elif tensor in ("w_hadamard", "a_hadamard"):
            letter = tensor[0]
            src = self.fwd_codes.get((layer, letter))
            if value.dtype.kind in "iu" and src is not None:
                n_src = src[0].shape[0] if letter == "w" else src[0].shape[1]
                p = rule_block_size(n_src, self.nm.hadamard)
                lo, hi = hadamard_range(src[1], src[2], p)
                st[tensor] = (value, lo, hi)
                what = "H_out·w (forward weight codes, along N)" if letter == "w" else \
                    "H_bs·a (forward activation codes, along the batch)"
                self._emit(int_tensor(path, value, lo, hi, f"{what}, block {p}, exact",
                                       block=p), layer, kind, tensor)
            else:
                st[tensor] = (value, None, None)
                self._emit(float_tensor(path, value, f"{tensor} (float32 operand)"), layer,
                           kind, tensor)
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
        else:                                   # anything new the operator may record
            if value.dtype.kind in "iu":
                self._emit(int_tensor(path, value, int(value.min(initial=0)),
                                       int(value.max(initial=0)), tensor), layer, kind, tensor)
            else:
                self._emit(float_tensor(path, value, tensor), layer, kind, tensor)

    # -- operand codes (+ the random bits they consumed) ---------------------------------
    def _codes(self, layer, kind, letter, codes, st):
        role = PRODUCTS[kind].operand(letter)
        op = role.field
        spec: QuantSpec = getattr(self.nm, op)
        if spec.stochastic:
            bits = self._sr_bits(layer, kind, role, spec, codes, st)
            t = f"{letter}_sr_bits"
            self._emit(Tensor(self._path(layer, kind, t), bits, dict(
                bits=spec.sr_bits, signed=False, encoding="unsigned",
                hw_type=f"uint{spec.sr_bits}", operand=op,
                description=f"{op}: the {spec.sr_bits} random bits R added below the kept "
                            f"LSB of each element (NUMERICS.md §2.1, §3)")), layer, kind, t)
        lo, hi = spec_range(spec, codes)
        st[f"{letter}_codes"] = (codes, lo, hi)
        if kind == MatmulKind.FWD:
            self.fwd_codes[(layer, letter)] = (codes, lo, hi)
        t = f"{letter}_codes"
        extra = dict(operand=op, code_bits=spec.bits, format=str(spec.format))
        if spec.format == QuantFormat.LOG2:
            extra["note"] = "log2 codes are stored as their values 0, ±2^e"
        tc = int_tensor(self._path(layer, kind, t), codes, lo, hi, _describe_spec(op, spec),
                         **extra)
        self.last_codes[(layer, kind, letter)] = tc
        self._emit(tc, layer, kind, t)

    def _sr_bits(self, layer, kind, role, spec, codes, st) -> np.ndarray:
        op, letter = role.field, role.letter
        stream = self.stream.child(layer).child(op)
        groups = codes.shape[0] if role.grouped else 1
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
        src = f"{letter}_hadamard" if kind != MatmulKind.FWD else None
        if src is not None and src in st:
            x = np.asarray(st[src][0]).astype(np.float32)
            xs = x.reshape(groups, *codes.shape[1:]) if role.grouped else x[None]
            for g in range(groups):
                q = quantize_spec(xs[g], spec, SRDraw(keys[g]))
                want = codes[g] if role.grouped else codes
                if not np.array_equal(q.codes.astype(np.int64), want.astype(np.int64)):
                    raise RuntimeError(f"golden: the re-derived SR draw of {layer}/{kind}/"
                                       f"{letter} does not reproduce the recorded codes")
        return out.reshape(codes.shape)

    # -- accumulator: tile partials, registers, tile sums --------------------------------
    def _acc(self, layer, kind, acc_value, st):
        acc: Optional[Accumulator] = getattr(self.nm, PRODUCTS[kind].accumulator)
        path = lambda t: self._path(layer, kind, t)          # noqa: E731
        if acc_value.dtype.kind not in "iu" or acc is None:
            self._emit(float_tensor(path("acc"), acc_value, "float32 matmul result (this "
                                     "matmul is not integer in this datapath)"),
                       layer, kind, "acc")
            return
        left, right = self._operands(kind, st)
        (L, llo, lhi), (Rr, rlo, rhi) = left, right
        K = L.shape[-1]
        tile = acc.tile_for(K)
        n_tiles = len(tile_starts(K, tile))
        plo, phi = product_range((llo, lhi), (rlo, rhi))
        exact = Accumulator(bits=62, tile=None, mode="exact")
        reg_acc = Accumulator(bits=acc.bits, tile=None, mode=acc.mode, symmetric=acc.symmetric)
        partials, registers, sums = [], [], []
        total = np.zeros(acc_value.shape, np.int64)
        for k0 in tile_starts(K, tile):
            ls, rs = L[..., k0:k0 + tile], Rr[..., k0:k0 + tile, :]
            partials.append(int_matmul(ls, rs, exact))
            registers.append(int_matmul(ls, rs, reg_acc))
            total = tile_sum_register(total + registers[-1], acc)
            sums.append(total.copy())
        if not np.array_equal(total, acc_value):
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
        ts_width = ("unbounded" if acc.tile_sum_bits is None
                    else f"{acc.tile_sum_bits} bits")
        self._emit(int_tensor(path("acc_tile_sum"), np.stack(sums), *ts_rng,
                               f"tile-sum register after adding each tile ({ts_width})",
                               **common), layer, kind, "acc_tile_sum")
        self._emit(int_tensor(path("acc"), acc_value, *ts_rng,
                               "matmul result (the final tile-sum register)", **common),
                   layer, kind, "acc")

    def _operands(self, kind, st):
        if kind == MatmulKind.FWD:
            a, w = st["a_codes"], st["w_codes"]
            return a, (w[0].T, w[1], w[2])
        left = st["g_codes"]
        if kind == MatmulKind.GRAD_IN:
            right = st.get("w_codes", st.get("w_hadamard"))
        else:
            right = st.get("a_codes", st.get("a_hadamard"))
        return left, right


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
        t = float_tensor(f"{prefix}/{layer}/{kind}/{pname}", p, f"{what} {pname} (float32 "
                          "master copy)")
        t.attrs.update(step=step, layer=layer, kind=kind, tensor=pname)
        out.append(t)
    return out


def run_golden(datapath: NumericsSource,
               model: str = "fcnet:16,16,16,4", batch: int = 8, steps: int = 2,
               seed: Optional[int] = None, lr: float = LR,
               momentum: float = MOMENTUM) -> tuple[list, dict]:
    """Run the steps and return (tensors in execution order, root attributes)."""
    dp = resolve_numerics(datapath)
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
        tx = float_tensor(f"{pre}/input/batch/x", x, "synthetic input, uniform [-1, 1) "
                           "float32 (default_rng(seed).uniform, one draw per step)")
        ty = int_tensor(f"{pre}/input/batch/labels", labels, 0, spec.classes - 1,
                         "class labels (default_rng(seed).integers, after x)")
        for t, n in ((tx, "x"), (ty, "labels")):
            t.attrs.update(step=step, layer="input", kind="batch", tensor=n)
            tensors.append(t)
        seen = {}

        def on_loss(logits, grad, loss):
            seen.update(logits=logits, grad=grad, loss=loss, at=len(tensors))
        token = RECORDER.set(_StepRecorder(tensors, step, nm, stream))
        try:
            loss = sgd_step(opt, partial(loss_step, net, on_loss=on_loss), x, labels)
        finally:
            RECORDER.reset(token)
        tl = float_tensor(f"{pre}/loss/cross_entropy/logits", seen["logits"],
                          "head output + bias (float32)")
        tg = float_tensor(f"{pre}/loss/cross_entropy/grad_logits", seen["grad"],
                          "dL/dlogits = (softmax - onehot)/B (float32)", loss=float(loss))
        for t, n in ((tl, "logits"), (tg, "grad_logits")):
            t.attrs.update(step=step, layer="loss", kind="cross_entropy", tensor=n)
        n_before = seen["at"]
        tensors[n_before:n_before] = [tl, tg]      # the loss comes between fwd and bwd
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


def write_golden(datapath: NumericsSource, model: str = "fcnet:16,16,16,4", batch: int = 8, steps: int = 2,
                 seed: Optional[int] = None, out: str = "golden.h5",
                 hex_dir: Optional[str] = None, pack_int4: bool = False,
                 lr: float = LR, momentum: float = MOMENTUM) -> GoldenResult:
    """Run the golden steps and write `out` (and, with hex_dir, the $readmemh files)."""
    tensors, root = run_golden(datapath, model, batch, steps, seed, lr, momentum)
    write_hdf5(tensors, root, out)
    manifest = write_hex(out, hex_dir, pack_int4) if hex_dir else None
    return GoldenResult(out, len(tensors), steps, list(root["losses"]), manifest)


# ------------------------------------------------------------------------- reading
# ----------------------------------------------------------------------------- hex
