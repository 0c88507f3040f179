"""Bad input to every public entry of intsim: a table of cases, one line each.

The API (quantize, QuantSpec, Accumulator, int_matmul, fwht, Numerics, preset, SRStream,
resolve_numerics, the nn layers and SGD), every flag of `intsim cil`, `demo`, `sweep`,
`bench`, every config key and datapath key, and the file readers, with wrong types and
ranges, NaN/Inf, empty, truncated, corrupt and adversarial files. The data loaders have their
own table (test_datasets_bad_input.py). The machinery and the meaning of a Case are in
bad_input_cases.py; adding a case is one line.
"""
from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bad_input_cases import EVIL_PICKLE, Case, case_ids, check, evil_npy, not_pwned
from intsim import Accumulator, Numerics, QuantSpec, SRStream, fwht, int_matmul, preset, quantize
from intsim.core.ranges import code_range
from intsim.core.resolve import resolve_numerics
from intsim.core.trace import read_hdf5
from intsim.experiments.config import ConfigError, resolve_config
from intsim.experiments.sweep import Grid
from intsim.formats.run_folder import CheckpointError, read_checkpoint, write_checkpoint
from intsim.models import FCNet, IncrementalNet, SmallCNN, resnet32
from intsim.models.networks import CifarResNet
from intsim.nn import (AvgPool2d, BasicBlock, BatchNorm1d, BatchNorm2d, Conv2d, Linear,
                       MaxPool2d, Sequential, ShortcutA)
from intsim.nn.optim import SGD, MultiStepLR, StepLR

VE, TE, FNF = ValueError, TypeError, FileNotFoundError
X = np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8)
I3 = np.ones((2, 3), np.int64)
B3 = np.ones((3, 2), np.int64)

# ------------------------------------------------------------------ files the cases use
TINY = """\
dataset = "synthetic"
method = "{method}"
numerics = "{numerics}"
epochs = 1
batch_size = 16
lr = 0.05
memory = 36
hidden = 24
{extra}
[dataset_params]
n_classes = 6
n_subjects = 4
windows_per_cell = 10
{tables}"""


def cfg(extra: str = "", method: str = "icarl", numerics: str = "fp32", tables: str = "") -> dict:
    """{"c.toml": a tiny synthetic config with `extra` top-level lines and `tables`}."""
    return {"c.toml": TINY.format(extra=extra, method=method, numerics=numerics, tables=tables)}


def mp(body: str, method: str = "icarl") -> dict:
    """A config whose [method_params] table holds `body`."""
    return cfg(method=method, tables=f"[method_params]\n{body}\n")


def ov(body: str) -> dict:
    """A config with hdqt numerics and `body` under [numerics_overrides]."""
    return cfg(numerics="hdqt", tables=f"[numerics_overrides]\n{body}\n")


CIL = ["cil", "--config", "{tmp}/c.toml", "--out", "{tmp}/run", "--quiet"]
DP_OK = preset("hdqt").to_toml()


def dp(body: str) -> dict:
    return {"d.toml": body}


def from_toml(tmp):
    return Numerics.from_toml(tmp / "d.toml")


GRID = """\
datasets = ["synthetic"]
methods = ["icarl"]
numerics = ["fp32"]
seeds = [0]
{top}
[settings]
epochs = 1
batch_size = 16
memory = 36
hidden = 24
{settings}
[settings.dataset_params]
n_classes = 6
n_subjects = 4
windows_per_cell = 10
"""


def grid(top: str = "", settings: str = "") -> dict:
    return {"g.toml": GRID.format(top=top, settings=settings)}


SWEEP = ["sweep", "--grid", "{tmp}/g.toml", "--out", "{tmp}/sw", "--workers", "0", "--quiet",
         "--no-plots"]


def checkpoint_bytes(tmp: Path, mutate=None) -> bytes:
    """A valid checkpoint file's bytes (optionally with `mutate(arrays, meta)` applied after
    the checksum was taken, i.e. a tampered one)."""
    p = tmp / "ok.npz"
    write_checkpoint(p, {"a": np.arange(6.0)}, {"format": 1, "task": 0})
    if mutate is None:
        return p.read_bytes()
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta_json"]))
    mutate(arrays, meta)
    arrays["meta_json"] = np.array(json.dumps(meta))
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def flipped(raw: bytes, at: int) -> bytes:
    b = bytearray(raw)
    b[at] ^= 0xFF
    return bytes(b)


def diverged(tmp: Path) -> None:
    m = json.loads((tmp / "run" / "metrics.json").read_text())
    assert m["status"] == "diverged" and m["diverged"]["task"] == 0, m
    assert m["diverged"]["step"] is not None and m["n_tasks"] == 0


def diverged_after_one_task(tmp: Path) -> None:
    """Diverged in task 1: metrics.json keeps task 0's metrics, accuracy.png is drawn."""
    m = json.loads((tmp / "run" / "metrics.json").read_text())
    assert m["status"] == "diverged" and m["diverged"]["task"] == 1 and m["n_tasks"] == 1, m
    assert m["aia"] is not None and len(m["acc_matrix"]) == 1 and (tmp / "run" / "accuracy.png").exists()


WATCH_CIL = ["cil", "--dataset", "watch", "--method", "icarl", "--numerics", "fp32", "--out", "{tmp}/o",
             "--data-dir", "{tmp}/dd", "--quiet"]
WATCH_GRID = {"g.toml": 'datasets = ["watch"]\nmethods = ["icarl"]\nnumerics = ["fp32"]\nseeds = [0]\n'
                        '[data_dirs]\nwatch = "dd"\n[settings]\nepochs = 1\n',
              "dd/watch_dataset.npy": lambda t: evil_npy()}


def _set(arrays, meta, **kw):
    meta.update(kw)


LATIN1 = "epochs = 1 # caf\xe9\n".encode("latin-1")

# ---------------------------------------------------------------------------------- cases
CASES = [
    # ---- quantize
    Case("quantize", lambda t: quantize(X, "4"), VE, "bits: expected an int in [2, 16], got '4'"),
    Case("quantize", lambda t: quantize(X, 1), VE, "bits: expected an int in [2, 16], got 1"),
    Case("quantize", lambda t: quantize(X, 17), VE, "bits: expected an int in [2, 16]"),
    Case("quantize", lambda t: quantize(X, 4.0), VE, "bits: expected an int"),
    Case("quantize", lambda t: quantize(X, True), VE, "bits: expected an int"),
    Case("quantize", lambda t: quantize([1.0, 2.0], 4), VE, "x: expected a float16/float32/float64 NumPy array, got list"),
    Case("quantize", lambda t: quantize(np.ones(3, int), 4), VE, "x: expected a float16/float32/float64 NumPy array, got int64"),
    Case("quantize", lambda t: quantize(np.array(["a"], object), 4), VE, "x: expected a float"),
    Case("quantize", lambda t: quantize(np.array([1.0, np.nan], np.float32), 4), VE, "x: contains NaN or Inf"),
    Case("quantize", lambda t: quantize(np.array([np.inf], np.float32), 4), VE, "x: contains NaN or Inf"),
    Case("quantize", lambda t: quantize(np.array([1e300]), 4), VE, "beyond float32 range"),
    Case("quantize", lambda t: quantize(np.zeros(0, np.float32), 4), None, id="quantize-empty-handled"),
    Case("quantize", lambda t: quantize(X, 4, rounding="up"), VE, "rounding: expected one of"),
    Case("quantize", lambda t: quantize(X, 4, rounding=1), VE, "rounding: expected one of"),
    Case("quantize", lambda t: quantize(X, 4, rounding="stochastic"), VE, "rng: stochastic rounding needs an intsim.SRStream"),
    Case("quantize", lambda t: quantize(X, 4, rounding="stochastic", rng=3), VE, "rng: stochastic rounding needs"),
    Case("quantize", lambda t: quantize(X, 4, sr_bits=0), VE, "sr_bits: expected an int in [1, 32], got 0"),
    Case("quantize", lambda t: quantize(X, 4, sr_bits=33), VE, "sr_bits: expected an int in [1, 32]"),
    Case("quantize", lambda t: quantize(X, 4, signed="yes"), VE, "signed: expected None, True or False"),
    Case("quantize", lambda t: quantize(X, 4, signed=False), VE, "signed=False but x has negative values"),
    Case("quantize", lambda t: quantize(X, 4, symmetric=1), VE, "symmetric: expected True or False, got 1"),
    Case("quantize", lambda t: quantize(X, 4, scale=1e39), VE, "scale: expected None, 'pow2', 'sawb' or a positive number in the normal float32 range"),
    Case("quantize", lambda t: quantize(X, 4, scale=1e-50), VE, "scale: expected None, 'pow2', 'sawb' or a positive number"),
    Case("quantize", lambda t: quantize(X, 4, scale=1e-40), VE, "normal float32 range"),
    Case("quantize", lambda t: quantize(X, 4, scale=-1.0), VE, "scale: expected"),
    Case("quantize", lambda t: quantize(X, 4, scale=float("nan")), VE, "scale: expected"),
    Case("quantize", lambda t: quantize(X, 4, scale="max"), VE, "scale: expected None, 'pow2', 'sawb' or a positive float, got 'max'"),
    Case("quantize", lambda t: quantize(X, 8, scale="sawb"), VE, "scale: 'sawb' has coefficients for 4 bits only"),
    Case("quantize", lambda t: quantize(X, 4, scale=True), VE, "scale: expected"),
    Case("quantize", lambda t: quantize(X, 4, clip=0), VE, "clip: expected a positive number in the normal float32 range"),
    Case("quantize", lambda t: quantize(X, 4, clip=-1.0), VE, "clip: expected a positive number"),
    Case("quantize", lambda t: quantize(X, 4, clip=float("nan")), VE, "clip: expected"),
    Case("quantize", lambda t: quantize(X, 4, clip=float("inf")), VE, "clip: expected"),
    Case("quantize", lambda t: quantize(X, 4, clip=1e39), VE, "clip: expected"),
    Case("quantize", lambda t: quantize(X, 4, clip=1e-50), VE, "clip: expected"),
    Case("quantize", lambda t: quantize(X, 4, clip="0.9"), VE, "clip: expected"),
    Case("quantize", lambda t: quantize(X * np.float32(1e38), 4, clip=10.0), VE, "clip: the clamp point max|x|·clip"),
    # ---- QuantSpec
    Case("QuantSpec", lambda t: QuantSpec(bits=0), VE, "bits: expected an int in [2, 16], got 0"),
    Case("QuantSpec", lambda t: QuantSpec(format="fp8"), VE, "format: expected one of ('int', 'log2'), got 'fp8'"),
    Case("QuantSpec", lambda t: QuantSpec(format="log2"), VE, "format='log2' needs rounding='stochastic'"),
    Case("QuantSpec", lambda t: QuantSpec(bits=6, format="log2", rounding="stochastic"), VE, "bits <= 5"),
    Case("QuantSpec", lambda t: QuantSpec(scale=1e39), VE, "scale: expected"),
    Case("QuantSpec", lambda t: QuantSpec(clip=0.0), VE, "clip: expected"),
    Case("QuantSpec", lambda t: QuantSpec(rounding="up"), VE, "rounding: expected one of"),
    Case("QuantSpec", lambda t: QuantSpec(sr_bits=40), VE, "sr_bits: expected an int in [1, 32], got 40"),
    Case("QuantSpec", lambda t: QuantSpec(symmetric="yes"), VE, "symmetric: expected True or False"),
    Case("QuantSpec", lambda t: QuantSpec(signed=2), VE, "signed: expected None, True or False, got 2"),
    # ---- Accumulator
    Case("Accumulator", lambda t: Accumulator(bits=1), VE, "bits: expected an int in [2, 62], got 1"),
    Case("Accumulator", lambda t: Accumulator(bits=63), VE, "bits: expected an int in [2, 62]"),
    Case("Accumulator", lambda t: Accumulator(bits="8"), VE, "bits: expected an int in [2, 62], got '8'"),
    Case("Accumulator", lambda t: Accumulator(tile=0), VE, "tile: expected None or a positive int, got 0"),
    Case("Accumulator", lambda t: Accumulator(tile=3.5), VE, "tile: expected None or a positive int"),
    Case("Accumulator", lambda t: Accumulator(tile=True), VE, "tile: expected None or a positive int"),
    Case("Accumulator", lambda t: Accumulator(mode="clip"), VE, "mode: expected one of ('saturate', 'clamp_tile', 'wrap', 'exact')"),
    Case("Accumulator", lambda t: Accumulator(symmetric="no"), VE, "symmetric: expected a bool"),
    Case("Accumulator", lambda t: Accumulator(tile_sum_bits=64), VE, "tile_sum_bits: expected None or an int in [2, 63]"),
    Case("Accumulator", lambda t: Accumulator(tile_sum_bits=1), VE, "tile_sum_bits: expected None or an int in [2, 63]"),
    # ---- int_matmul
    Case("int_matmul", lambda t: int_matmul(X, X.T, Accumulator()), VE, "a: expected a NumPy integer array, got float32"),
    Case("int_matmul", lambda t: int_matmul(I3, B3.astype(float), Accumulator()), VE, "b: expected a NumPy integer array"),
    Case("int_matmul", lambda t: int_matmul(I3, B3, None), VE, "acc: expected an intsim.Accumulator, got None"),
    Case("int_matmul", lambda t: int_matmul(I3, B3, {"bits": 8}), VE, "acc: expected an intsim.Accumulator"),
    Case("int_matmul", lambda t: int_matmul(I3, np.ones((4, 2), int), Accumulator()), VE, "a, b: expected shapes (..., M, K) and (K, N)"),
    Case("int_matmul", lambda t: int_matmul(np.ones(3, int), B3, Accumulator()), VE, "a, b: expected shapes"),
    Case("int_matmul", lambda t: int_matmul(I3 * 1000, B3, Accumulator(8), a_range=code_range(4, True)), VE,
         "a: value 1000 at [0, 0] is outside the declared operand range [-7, 7] (a_range)"),
    Case("int_matmul", lambda t: int_matmul(I3, B3 * -8, Accumulator(8), b_range=code_range(4, True)), VE,
         "b: value -8 at [0, 0] is outside the declared operand range [-7, 7]"),
    Case("int_matmul", lambda t: int_matmul(I3, B3, Accumulator(), a_range=(7, -7)), VE, "a_range: expected (lo, hi) integers with lo <= hi"),
    Case("int_matmul", lambda t: int_matmul(I3, B3, Accumulator(), b_range=(-7.0, 7.0)), VE, "b_range: expected (lo, hi) integers"),
    Case("int_matmul", lambda t: int_matmul(I3, B3, Accumulator(), a_range=4), VE, "a_range: expected (lo, hi)"),
    Case("int_matmul", lambda t: int_matmul(I3 << 40, B3 << 40, Accumulator()), VE, "the unbounded tile-sum register would exceed int64"),
    Case("int_matmul", lambda t: int_matmul(I3 * 7, B3 * 7, Accumulator(8), a_range=(-7, 7), b_range=(-7, 7)), None,
         id="int_matmul-declared-ok-handled"),
    # ---- fwht
    Case("fwht", lambda t: fwht(np.array(["a"] * 4)), VE, "fwht: `x` must have an integer dtype"),
    Case("fwht", lambda t: fwht(np.ones(4, int), axis=3), (VE, IndexError), "axis"),
    Case("fwht", lambda t: fwht(np.ones(4, int), block=3), VE, "fwht: `block` must be a power of two >= 1; got 3"),
    Case("fwht", lambda t: fwht(np.ones(4, int), block=0), VE, "`block`"),
    Case("fwht", lambda t: fwht(np.ones(4, int), block="x"), VE, "block"),
    Case("fwht", lambda t: fwht(np.full(4, 2 ** 62)), VE, "needs 66 bits"),
    Case("fwht", lambda t: fwht(np.ones(4, np.float32)), None, id="fwht-float-handled"),
    # ---- Numerics and preset
    Case("Numerics", lambda t: Numerics(w_fwd=4), VE, "w_fwd: expected an intsim.QuantSpec or None, got 4"),
    Case("Numerics", lambda t: Numerics(acc_fwd=QuantSpec()), VE, "acc_fwd: expected an intsim.Accumulator or None"),
    Case("Numerics", lambda t: Numerics(hadamard="yes"), VE, "hadamard: expected one of (None, 'largest_pow2', 'pad'"),
    Case("Numerics", lambda t: Numerics(name=5), VE, "name: expected a string, got 5"),
    Case("Numerics", lambda t: Numerics(acc_fwd=Accumulator()), VE,
         "acc_fwd: the forward matmul a_fwd · w_fwdᵀ has a float operand (a_fwd is none: float32)"),
    Case("Numerics", lambda t: preset("hdqt").replace(w_fwd=None, w_bwd=None), VE,
         "acc_fwd: the forward matmul a_fwd · w_fwdᵀ has a float operand (w_fwd is none"),
    Case("Numerics", lambda t: preset("hdqt").replace(g_in=None), VE, "acc_in: the input-gradient matmul g_in · w_bwd has a float operand"),
    Case("Numerics", lambda t: preset("hdqt").replace(w_fwd=QuantSpec(bits=4, rounding="stochastic", format="log2")), VE,
         "w_fwd: format='log2' is for gradients"),
    Case("preset", lambda t: preset("hdq"), VE, "preset: unknown name 'hdq'; expected one of"),
    Case("preset", lambda t: preset(3), VE, "preset: unknown name 3"),
    Case("preset", lambda t: preset(None), VE, "preset: unknown name None"),
    # ---- SRStream
    Case("SRStream", lambda t: SRStream(-1), VE, "seed: expected an int in [0, 2**64), got -1"),
    Case("SRStream", lambda t: SRStream("a"), VE, "seed: expected an int in [0, 2**64)"),
    Case("SRStream", lambda t: SRStream(1.5), VE, "seed: expected an int"),
    Case("SRStream", lambda t: SRStream(2 ** 70), VE, "seed: expected an int in [0, 2**64)"),
    Case("SRStream", lambda t: SRStream(True), VE, "seed: expected an int"),
    Case("SRStream", lambda t: SRStream(0, [1]), VE, "stream: expected a str or an int in [0, 2**64), got [1]"),
    Case("SRStream", lambda t: SRStream(0, -1), VE, "stream: expected a str or an int"),
    # ---- resolve_numerics (names, overrides, datapath files)
    Case("resolve_numerics", lambda t: resolve_numerics("nope"), VE, "numerics: 'nope' is neither a preset"),
    Case("resolve_numerics", lambda t: resolve_numerics(5), VE, "numerics: expected a preset name, a datapath file"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt:hadamard=x"), VE, "hdqt:hadamard: expected one of 'none', 'largest_pow2', 'pad'"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", 3), VE, "numerics_overrides: expected a table, got 3"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"acc": {}}), VE, "numerics_overrides: unknown key(s) ['acc']"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"acc_fwd": {"bits": "8"}}), VE,
         "numerics_overrides.acc_fwd.bits: expected an int in [2, 62], got '8'"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"acc_fwd": {"width": 8}}), VE,
         "numerics_overrides.acc_fwd: unknown field(s) ['width']"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"w_fwd": "none"}), VE,
         "numerics_overrides: acc_fwd: the forward matmul a_fwd · w_fwdᵀ has a float operand"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"w_fwd": {"scale": 1e-50}}), VE,
         "numerics_overrides.w_fwd.scale: expected"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"name": 5}), VE, "numerics_overrides.name: expected a string"),
    Case("resolve_numerics", lambda t: resolve_numerics(str(t / "missing.toml")), FNF, "datapath: no such file"),
    Case("resolve_numerics", lambda t: resolve_numerics("hdqt", {"w_fwd": "none", "acc_fwd": "none"}), None,
         id="resolve-float-forward-handled"),
    # ---- datapath files (Numerics.from_toml; also --numerics FILE of intsim cil)
    Case("datapath file", from_toml, FNF, "datapath: no such file"),
    Case("datapath file", from_toml, VE, "d.toml: not UTF-8 text", files={"d.toml": b"name = \"caf\xe9\"\n"}),
    Case("datapath file", from_toml, VE, "d.toml: invalid TOML", files=dp("[w_fwd\n")),
    Case("datapath file", from_toml, None, files=dp(""), id="datapath-empty-is-fp32-handled"),
    Case("datapath key", from_toml, VE, "d.toml: width: unknown key", files=dp("width = 8\n")),
    Case("datapath key", from_toml, VE, "d.toml: acc_w.width: unknown key", files=dp(DP_OK.replace("[acc_w]\n", "[acc_w]\nwidth = 3\n"))),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd: expected a table", files=dp("w_fwd = 4\n")),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.bits: expected an int in [2, 16], got '4'", files=dp('[w_fwd]\nbits = "4"\n')),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.scale: expected", files=dp("[w_fwd]\nscale = 1e39\n")),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.scale: expected", files=dp("[w_fwd]\nscale = 1e-50\n")),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.scale: expected \"dynamic\", \"pow2\", \"sawb\"", files=dp('[w_fwd]\nscale = "max"\n')),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.clip: expected", files=dp("[w_fwd]\nclip = 1e-50\n")),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.clip: expected", files=dp("[w_fwd]\nclip = nan\n")),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.signed: expected true, false or \"auto\"", files=dp('[w_fwd]\nsigned = "maybe"\n')),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.rounding: expected one of", files=dp('[w_fwd]\nrounding = "up"\n')),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd.sr_bits: expected an int in [1, 32]", files=dp("[w_fwd]\nsr_bits = 0\n")),
    Case("datapath key", from_toml, VE, "d.toml: w_fwd: format='log2' is for gradients",
         files=dp('[w_fwd]\nformat = "log2"\nrounding = "stochastic"\n')),
    Case("datapath key", from_toml, VE, "d.toml: acc_fwd: the forward matmul a_fwd · w_fwdᵀ has a float operand",
         files=dp("[acc_fwd]\nbits = 8\n")),
    Case("datapath key", from_toml, VE, "d.toml: acc_fwd.bits: a 4-bit register (max 7) cannot hold a single worst-case product",
         files=dp(DP_OK.replace("bits = 8\ntile = 32", "bits = 4\ntile = 32", 1))),
    Case("datapath key", from_toml, VE, "d.toml: acc_fwd.tile_sum_bits: a 6-bit tile-sum register",
         files=dp(DP_OK.replace("tile_sum_bits = 32", "tile_sum_bits = 6", 1))),
    Case("datapath key", from_toml, VE, "d.toml: acc_fwd.tile: expected None or a positive int",
         files=dp(DP_OK.replace("tile = 32", 'tile = "all"', 1))),
    Case("datapath key", from_toml, VE, "d.toml: acc_fwd.mode: expected one of", files=dp(DP_OK.replace('mode = "saturate"', 'mode = "clip"', 1))),
    Case("datapath key", from_toml, VE, "d.toml: seed: expected a non-negative integer, got -1", files=dp("seed = -1\n")),
    Case("datapath key", from_toml, VE, "d.toml: seed: expected a non-negative integer", files=dp('seed = "x"\n')),
    Case("datapath key", from_toml, VE, "d.toml: allow_narrow_accumulators: expected true or false", files=dp('allow_narrow_accumulators = "yes"\n')),
    Case("datapath key", from_toml, VE, "d.toml: hadamard: expected one of 'none', 'largest_pow2'", files=dp('hadamard = "x"\n')),
    Case("datapath key", from_toml, VE, "d.toml: name: expected a string, got 5", files=dp("name = 5\n")),
    # ---- nn layers and networks
    Case("Linear", lambda t: Linear(0, 3), VE, "Linear: in_features: must be >= 1, got 0"),
    Case("Linear", lambda t: Linear("3", 3), VE, "Linear: in_features: expected an integer >= 1, got '3'"),
    Case("Linear", lambda t: Linear(3, -1), VE, "Linear: out_features: must be >= 1, got -1"),
    Case("Linear", lambda t: Linear(3, 3, bias="yes"), VE, "Linear: bias: expected true or false"),
    Case("Linear", lambda t: Linear(3, 3, gain=0), VE, "Linear: gain: must be > 0"),
    Case("Linear", lambda t: Linear(3, 3, numerics="hdqt"), VE, "Linear: numerics: expected an intsim.Numerics (e.g. intsim.preset('hdqt'))"),
    Case("Linear", lambda t: Linear(3, 3, seed=-1), VE, "Linear: seed: must be >= 0, got -1"),
    Case("Linear", lambda t: Linear(3, 3, seed=1.5), VE, "Linear: seed: expected an integer >= 0"),
    Case("Linear.forward", lambda t: Linear(3, 2).forward(np.ones((2, 4), np.float32)), VE, "Linear: x: expected shape (..., 3), got (2, 4)"),
    Case("Conv2d", lambda t: Conv2d(1, 1, 0), VE, "Conv2d: kernel_size: must be >= 1, got 0"),
    Case("Conv2d", lambda t: Conv2d(1, 1, 3, stride=0), VE, "Conv2d: stride: must be >= 1, got 0"),
    Case("Conv2d", lambda t: Conv2d(1, 1, 3, padding=-1), VE, "Conv2d: padding: must be >= 0, got -1"),
    Case("Conv2d", lambda t: Conv2d(0, 1, 3), VE, "Conv2d: in_channels: must be >= 1"),
    Case("Conv2d.forward", lambda t: Conv2d(2, 1, 3).forward(np.ones((1, 3, 5, 5), np.float32)), VE, "channels"),
    Case("BatchNorm1d", lambda t: BatchNorm1d(0), VE, "BatchNorm1d: num_features: must be >= 1, got 0"),
    Case("BatchNorm1d", lambda t: BatchNorm1d(3, eps=0), VE, "BatchNorm1d: eps: must be > 0"),
    Case("BatchNorm2d", lambda t: BatchNorm2d(3, momentum=2), VE, "BatchNorm2d: momentum: must be in [0, 1], got 2"),
    Case("AvgPool2d", lambda t: AvgPool2d(0), VE, "AvgPool2d: kernel_size: must be >= 1, got 0"),
    Case("MaxPool2d", lambda t: MaxPool2d(2, stride=0), VE, "MaxPool2d: stride: must be >= 1"),
    Case("MaxPool2d", lambda t: MaxPool2d(2, padding=-1), VE, "MaxPool2d: padding: must be >= 0"),
    Case("BasicBlock", lambda t: BasicBlock(4, 4, stride=0), VE, "BasicBlock: stride: must be >= 1, got 0"),
    Case("BasicBlock", lambda t: BasicBlock(4, 8, shortcut="C"), VE, "BasicBlock: shortcut: expected one of 'A', 'B', got 'C'"),
    Case("ShortcutA", lambda t: ShortcutA(8, 4, 1), VE, "ShortcutA: out_channels must be >= in_channels"),
    Case("Sequential", lambda t: Sequential(3), VE, "Sequential: module 0: expected an intsim.nn.Module or a (name, Module) pair, got 3"),
    Case("FCNet", lambda t: FCNet(0, 3, 3), VE, "FCNet: in_dim: must be >= 1, got 0"),
    Case("FCNet", lambda t: FCNet(3, "3", 3), VE, "FCNet: hidden: expected an integer >= 1"),
    Case("FCNet", lambda t: FCNet(3, 3, 3, n_hidden=-1), VE, "FCNet: n_hidden: must be >= 0"),
    Case("resnet32", lambda t: resnet32(0), VE, "CifarResNet: in_channels: must be >= 1, got 0"),
    Case("CifarResNet", lambda t: CifarResNet(depth=10), VE, "CifarResNet: depth must be 6n+2, got 10"),
    Case("SmallCNN", lambda t: SmallCNN(1, (32,)), VE, "SmallCNN: channels: expected two channel counts"),
    Case("IncrementalNet", lambda t: IncrementalNet(3), VE, "IncrementalNet: backbone: expected an intsim.nn.Module with a feature_dim"),
    # ---- SGD and schedules
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=-1), VE, "lr: must be > 0, got -1"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0), VE, "lr: must be > 0, got 0"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=float("nan")), VE, "lr: expected a number > 0, got nan"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr="0.1"), VE, "lr: expected a number > 0, got '0.1'"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0.1, momentum=5), VE, "momentum: must be in [0, 1), got 5"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0.1, momentum=-0.1), VE, "momentum: must be in [0, 1)"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0.1, momentum=1.0), VE, "momentum: must be in [0, 1), got 1.0"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0.1, weight_decay=-5), VE, "weight_decay: must be >= 0, got -5"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0.1, dampening=2), VE, "dampening: must be in [0, 1], got 2"),
    Case("SGD", lambda t: SGD(Linear(2, 2), lr=0.1, nesterov=True), VE, "nesterov needs momentum > 0"),
    Case("SGD", lambda t: SGD("net", lr=0.1), VE, "modules: expected an intsim.nn.Module or a list of them"),
    Case("MultiStepLR", lambda t: MultiStepLR(SGD(Linear(2, 2), lr=0.1), [1], gamma=-1), VE, "gamma: must be > 0, got -1"),
    Case("MultiStepLR", lambda t: MultiStepLR(SGD(Linear(2, 2), lr=0.1), [0]), VE, "milestones: must be >= 1, got 0"),
    Case("StepLR", lambda t: StepLR(SGD(Linear(2, 2), lr=0.1), 0), VE, "step_size: must be >= 1, got 0"),
    # ---- file readers: checkpoints, traces, config, grid
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: not a readable checkpoint",
         files={"c.npz": b""}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: not a readable checkpoint",
         files={"c.npz": lambda t: checkpoint_bytes(t)[:120]}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: not a readable checkpoint",
         files={"c.npz": EVIL_PICKLE}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: not a readable checkpoint (BadZipFile",
         files={"c.npz": lambda t: flipped(checkpoint_bytes(t), 100)}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: checksum mismatch",
         files={"c.npz": lambda t: checkpoint_bytes(t, lambda a, m: a.update(a=a["a"] + 1))}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: not an intsim checkpoint (no meta_json)",
         files={"c.npz": lambda t: _npz(a=np.zeros(2))}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), CheckpointError, "c.npz: corrupt meta_json",
         files={"c.npz": lambda t: _npz(a=np.zeros(2), meta_json=np.array("{not json"))}),
    Case("read_checkpoint", lambda t: read_checkpoint(t / "c.npz"), None,
         files={"c.npz": lambda t: _npz(a=np.zeros(2), meta_json=np.array('{"format": 1, "task": 0}'))},
         id="read_checkpoint-old-without-checksum-handled"),
    Case("read_hdf5", lambda t: read_hdf5(str(t / "none.h5")), FNF, "path: no trace file at"),
    Case("read_hdf5", lambda t: read_hdf5(str(t / "t.h5")), VE, "t.h5 is not a readable HDF5 trace file", files={"t.h5": "junk"}),
    Case("read_hdf5", lambda t: read_hdf5(str(t / "t.h5")), VE, "t.h5 is not a readable HDF5 trace file", files={"t.h5": b""}),
    Case("config file", lambda t: resolve_config({"out": "o"}, t / "none.toml"), ConfigError, "config file not found"),
    Case("config file", lambda t: resolve_config({"out": "o"}, t / "c.toml"), ConfigError, "c.toml: not UTF-8 text", files={"c.toml": LATIN1}),
    Case("config file", lambda t: resolve_config({"out": "o"}, t / "c.toml"), ConfigError, "c.toml: invalid TOML", files={"c.toml": "epochs = \n"}),
    Case("grid file", lambda t: Grid.load(t / "none.toml"), ConfigError, "grid file not found"),
    Case("grid file", lambda t: Grid.load(t / "g.toml"), ConfigError, "g.toml: not UTF-8 text", files={"g.toml": LATIN1}),
    Case("grid file", lambda t: Grid.load(t / "g.toml"), ConfigError, "g.toml: invalid TOML", files={"g.toml": "seeds = [\n"}),
    # ---- intsim cil: flags
    Case("intsim cil --dataset", ["cil", "--dataset", "mnist", "--method", "icarl", "--numerics", "fp32", "--out", "o"], 2, "or a data file (.csv, .parquet, .pq, .npz; docs/data.md), got 'mnist'"),
    Case("intsim cil --dataset", ["cil", "--dataset", "har.txt", "--method", "icarl", "--out", "o"], 2, "got 'har.txt'"),
    Case("intsim cil --dataset", ["cil", "--dataset", "{tmp}/gone.csv", "--method", "icarl", "--out", "o"], 2, "data file not found"),
    Case("intsim cil --method", ["cil", "--dataset", "synthetic", "--method", "ewc", "--numerics", "fp32", "--out", "o"], 2, "invalid choice: 'ewc'"),
    Case("intsim cil --numerics", [*CIL, "--numerics", "int3"], 2, "numerics: 'int3' is neither a preset", files=cfg()),
    Case("intsim cil --numerics", [*CIL, "--numerics", "{tmp}/none.toml"], 2, "datapath: no such file", files=cfg()),
    Case("intsim cil --numerics", [*CIL, "--numerics", "{tmp}/d.toml"], 2, "sets seed = 0, which a training run does not use",
         files={**cfg(), "d.toml": "seed = 0\n" + DP_OK}),
    Case("intsim cil --numerics", [*CIL, "--numerics", "{tmp}/d.toml"], 2, "d.toml: acc_fwd: the forward matmul",
         files={**cfg(), "d.toml": "[acc_fwd]\nbits = 8\n"}),
    Case("intsim cil --numerics", [*CIL, "--numerics", "{tmp}/d.toml"], 2, "d.toml: w_fwd.scale: expected",
         files={**cfg(), "d.toml": DP_OK.replace('scale = "dynamic"', "scale = 1e-50", 1)}),
    Case("intsim cil --seed", [*CIL, "--seed", "-1"], 2, "seed: must be >= 0, got -1", files=cfg()),
    Case("intsim cil --seed", [*CIL, "--seed", "x"], 2, "argument --seed: invalid int value: 'x'"),
    Case("intsim cil --epochs", [*CIL, "--epochs", "-1"], 2, "epochs: must be >= 0, got -1", files=cfg()),
    Case("intsim cil --epochs", [*CIL, "--epochs", "0"], 0, files=cfg(), id="cil-epochs-0-handled"),
    Case("intsim cil --lr", [*CIL, "--lr", "0"], 2, "lr: must be > 0, got 0.0", files=cfg()),
    Case("intsim cil --lr", [*CIL, "--lr", "nan"], 2, "lr: expected a number > 0, got nan", files=cfg()),
    Case("intsim cil --lr", [*CIL, "--lr", "1e30"], 3, "training diverged at task 0, stage train, epoch 0",
         files=cfg(), post=diverged, id="cil-lr-1e30-fp32-diverged"),
    Case("intsim cil --lr", [*CIL, "--lr", "1e30", "--numerics", "hdqt"], 3, "a quantized operand holds NaN or Inf",
         files=cfg(), post=diverged, id="cil-lr-1e30-hdqt-diverged"),
    Case("intsim cil --data-dir", WATCH_CIL, 2, "dd/watch_dataset.npy: not seglearn 1.2.5's watch_dataset.npy",
         files={"dd/watch_dataset.npy": lambda t: evil_npy()}, id="cil-watch-npy-payload"),
    Case("intsim cil --batch-size", [*CIL, "--batch-size", "1"], 2, "batch_size: must be >= 2, got 1 (a mini-batch of one sample is dropped",
         files=cfg()),
    Case("intsim cil --batch-size", [*CIL, "--batch-size", "0"], 2, "batch_size: must be >= 1, got 0", files=cfg()),
    Case("intsim cil --batch-size", [*CIL, "--batch-size", "1"], 0, files=cfg("keep_single_batch = true"), id="cil-batch-1-kept-handled"),
    Case("intsim cil --memory", [*CIL, "--memory", "-1"], 2, "memory: must be >= 0, got -1", files=cfg()),
    Case("intsim cil --memory", [*CIL, "--memory", "0"], 2, "memory: icarl classifies by the nearest mean of exemplars", files=cfg()),
    Case("intsim cil --memory", [*CIL, "--memory", "5"], 2, "leaves none with 6 classes", files=cfg()),
    Case("intsim cil --init-cls", [*CIL, "--init-cls", "0"], 2, "init_cls: must be >= 1, got 0", files=cfg()),
    Case("intsim cil --increment", [*CIL, "--increment", "0"], 2, "increment: must be >= 1", files=cfg()),
    Case("intsim cil --trace-every", [*CIL, "--trace-every", "-1"], 2, "trace_every: must be >= 0, got -1", files=cfg()),
    Case("intsim cil --config", ["cil", "--config", "{tmp}/none.toml", "--out", "o"], 2, "config file not found"),
    Case("intsim cil --config", ["cil", "--config", "{tmp}/c.toml", "--out", "o"], 2, "c.toml: not UTF-8 text", files={"c.toml": LATIN1}),
    Case("intsim cil --config", ["cil", "--config", "{tmp}/c.toml", "--out", "o"], 2, "c.toml: invalid TOML", files={"c.toml": "[x\n"}),
    Case("intsim cil --out", ["cil", "--config", "{tmp}/c.toml", "--quiet"], 2, "missing setting 'out'", files=cfg()),
    Case("intsim cil --out", [*CIL[:-3], "--out", "{tmp}/c.toml"], 2, "exists and is not a folder", files=cfg()),
    Case("intsim cil --out", CIL, 2, "is not empty (notes.txt) and was not made by intsim",
         files={**cfg(), "run/notes.txt": "mine"}, post=lambda t: _unchanged(t / "run", {"notes.txt": "mine"})),
    Case("intsim cil --overwrite", [*CIL, "--overwrite"], 2, "was not made by intsim",
         files={**cfg(), "run/metrics.json": "{}", "run/checkpoints/task000.npz": "mine"},
         post=lambda t: _unchanged(t / "run", {"metrics.json": "{}", "checkpoints/task000.npz": "mine"})),
    Case("intsim cil --resume", [*CIL, "--resume"], 2, "was not made by intsim", files={**cfg(), "run/data.csv": "1,2\n"}),
    Case("intsim cil --out", CIL, 2, "is an intsim sweep folder, not a run folder",
         files={**cfg(), "run/.intsim.json": '{"format": "intsim-folder", "kind": "sweep"}', "run/x": ""}),
    Case("intsim cil --data-dir", ["cil", "--dataset", "dsads", "--method", "icarl", "--numerics", "fp32", "--out", "{tmp}/o",
                                   "--data-dir", "{tmp}/nowhere"], 2, "dsads:"),
    Case("intsim cil", ["cil", "--dataset", "synthetic", "--out", "o"], 2, "missing setting 'method'"),
    # ---- config keys (the --config TOML file)
    Case("config key epoch", CIL, 2, "unknown setting(s) ['epoch']", files=cfg("epoch = 3")),
    Case("config key momentum", CIL, 2, "momentum: must be in [0, 1), got 5", files=cfg("momentum = 5")),
    Case("config key momentum", CIL, 2, "momentum: must be in [0, 1), got -0.5", files=cfg("momentum = -0.5")),
    Case("config key momentum", CIL, 2, "momentum: must be in [0, 1), got 1.0", files=cfg("momentum = 1.0")),
    Case("config key momentum", CIL, 2, "momentum: expected a number in [0, 1), got '0.9'", files=cfg('momentum = "0.9"')),
    Case("config key weight_decay", CIL, 2, "weight_decay: must be >= 0, got -5", files=cfg("weight_decay = -5")),
    Case("config key lr_gamma", CIL, 2, "lr_gamma: must be > 0, got -1", files=cfg("lr_gamma = -1")),
    Case("config key lr_gamma", CIL, 2, "lr_gamma: must be > 0, got 0", files=cfg("lr_gamma = 0")),
    Case("config key lr", CIL, 2, "lr: expected a number > 0, got inf",
         files={"c.toml": cfg()["c.toml"].replace("lr = 0.05", "lr = inf")}, id="config-lr-inf"),
    Case("config key test_fraction", CIL, 2, "test_fraction: must be in (0, 1), got 1.5", files=cfg("test_fraction = 1.5")),
    Case("config key test_fraction", CIL, 2, "test_fraction: must be in (0, 1), got 0", files=cfg("test_fraction = 0")),
    Case("config key milestones", CIL, 2, "milestones: expected a list of positive epochs, got [0]", files=cfg("milestones = [0]")),
    Case("config key milestones", CIL, 2, "milestones: expected a list of positive epochs, got '60'", files=cfg('milestones = "60"')),
    Case("config key eval_batch_size", CIL, 2, "eval_batch_size: must be >= 1, got 0", files=cfg("eval_batch_size = 0")),
    Case("config key hidden", CIL, 2, "hidden: must be >= 1, got 0", files={"c.toml": cfg()["c.toml"].replace("hidden = 24", "hidden = 0")}),
    Case("config key network", CIL, 2, "network: expected one of 'fcnet', 'resnet32', 'smallcnn', got 'mlp'", files=cfg('network = "mlp"')),
    Case("config key network", CIL, 2, "network 'resnet32' needs image data", files=cfg('network = "resnet32"')),
    Case("config key memory_mode", CIL, 2, "memory_mode: expected one of 'fixed_total', 'per_class'", files=cfg('memory_mode = "x"')),
    Case("config key exemplar_selection", CIL, 2, "exemplar_selection: expected one of 'herding', 'random'", files=cfg('exemplar_selection = 1')),
    Case("config key split", CIL, 2, "split: expected one of", files=cfg('split = "half"')),
    Case("config key order_rule", CIL, 2, "order_rule: expected one of 'seedsequence', 'pycil'", files=cfg('order_rule = "x"')),
    Case("config key scale", CIL, 2, "scale: expected one of 'minmax', 'cifar', 'none'", files=cfg('scale = "zscore"')),
    Case("config key keep_single_batch", CIL, 2, "keep_single_batch: expected true or false, got 1", files=cfg("keep_single_batch = 1")),
    Case("config key protocol", CIL, 2, "protocol: expected one of", files=cfg('protocol = "pycil"')),
    Case("config key augment", CIL, 2, "augment: expected true or false, got 'yes'", files=cfg('augment = "yes"')),
    Case("config key n_test_subjects", CIL, 2, "n_test_subjects: must be >= 1, got 0", files=cfg("n_test_subjects = 0")),
    Case("config key seed", CIL, 2, "seed: expected an integer >= 0, got 1.5", files=cfg("seed = 1.5")),
    Case("config key trace_every", CIL, 2, "trace_every: expected an integer >= 0, got True", files=cfg("trace_every = true")),
    Case("config key dataset_params", CIL, 2, "unknown parameter(s) ['windw']", files=cfg(tables="windw = 3\n")),
    Case("config key method_params", CIL, 2, "method_params: expected a table, got 3", files=cfg("method_params = 3")),
    Case("config key method_params", CIL, 2, "method_params: icarl option 'T': expected a number > 0, got '2'", files=mp('T = "2"')),
    Case("config key method_params", CIL, 2, "method_params: icarl option 'T': must be > 0, got -1", files=mp("T = -1")),
    Case("config key method_params", CIL, 3, "training diverged at task 1, stage train, epoch 0",
         files=mp("T = 1e-38"), post=diverged_after_one_task, id="icarl-T-tiny-diverges-in-task-1"),
    Case("config key method_params", CIL, 2, "method_params: icarl option 'loss': expected one of 'ce_kd', 'bce', got 'mse'", files=mp('loss = "mse"')),
    Case("config key method_params", CIL, 2, "method_params: icarl: unknown method option(s) ['lamda']", files=mp("lamda = 3")),
    Case("config key method_params", CIL, 2, "method_params: lwf option 'lambda': must be >= 0, got -1", files=mp("lambda = -1", "lwf")),
    Case("config key method_params", CIL, 2, "method_params: lwf option 'T': must be > 0, got 0", files=mp("T = 0", "lwf")),
    Case("config key method_params", CIL, 2, "method_params: bic option 'val_fraction': must be in (0, 1), got 2", files=mp("val_fraction = 2", "bic")),
    Case("config key method_params", CIL, 2, "method_params: bic option 'stage2_loss': expected one of 'ce', 'softmax_ce'",
         files=mp('stage2_loss = "mse"', "bic")),
    Case("config key method_params", CIL, 2, "method_params: der option 'aux_weight': must be >= 0", files=mp("aux_weight = -1", "der")),
    Case("config key method_params", CIL, 2, "method_params: der option 'weight_align': expected true or false, got 1",
         files=mp("weight_align = 1", "der")),
    Case("config key method_params", CIL, 2, "method_params: memo option 'train_base': expected true or false", files=mp('train_base = "no"', "memo")),
    Case("config key method_params", CIL, 2, "memo: cut 'fc9' is not a child of FCNet", files=mp('cut = "fc9"', "memo")),
    Case("config key method_params", CIL, 2, "method_params: memo option 'cut': expected a string (or none), got 5", files=mp("cut = 5", "memo")),
    Case("config key method_params", CIL, 2, "method_params: finetune: unknown method option(s) ['T']", files=mp("T = 2", "finetune")),
    Case("config key numerics_overrides", CIL, 2, "numerics_overrides: unknown key(s) ['acc']", files=ov("acc = 3")),
    Case("config key numerics_overrides", CIL, 2, "acc_fwd: the forward matmul a_fwd · w_fwdᵀ has a float operand (w_fwd is none",
         files=ov('w_fwd = "none"')),
    Case("config key numerics_overrides", CIL, 2, "numerics_overrides.acc_fwd.bits: expected an int in [2, 62], got '8'",
         files=ov('acc_fwd = {bits = "8"}')),
    Case("config key numerics_overrides", CIL, 2, "numerics_overrides.w_fwd.scale: expected", files=ov("w_fwd = {scale = 1e-50}")),
    # a register narrower than one product is the accumulator sweep's experiment (acc_bits = 4):
    Case("config key numerics_overrides", CIL, 0, files=ov("acc_fwd = {bits = 4}"), id="overrides-narrow-acc-handled"),
    Case("config key numerics_overrides", CIL, 2, "numerics_overrides.hadamard: expected", files=ov('hadamard = "yes"')),
    # ---- intsim demo
    Case("intsim demo --quick", ["demo", "--quick", "--epochs", "2", "--out", "{tmp}/d"], 2, "--quick means 1 epoch and 1 seed"),
    Case("intsim demo --quick", ["demo", "--quick", "--seeds", "2", "--out", "{tmp}/d"], 2, "cannot be combined with --epochs or --seeds"),
    Case("intsim demo --epochs", ["demo", "--epochs", "0", "--out", "{tmp}/d"], 2, "--epochs and --seeds must be >= 1"),
    Case("intsim demo --seeds", ["demo", "--seeds", "0", "--out", "{tmp}/d"], 2, "--epochs and --seeds must be >= 1"),
    Case("intsim demo --seed", ["demo", "--seed", "-2", "--out", "{tmp}/d"], 2, "--seed: must be >= 0, got -2"),
    Case("intsim demo --seed", ["demo", "--seed", "one"], 2, "argument --seed: invalid int value"),
    Case("intsim demo --out", ["demo", "--quick", "--out", "{tmp}/d"], 2, "is not empty (thesis.tex) and was not made by intsim",
         files={"d/thesis.tex": "x"}, post=lambda t: _unchanged(t / "d", {"thesis.tex": "x"})),
    Case("intsim demo --overwrite", ["demo", "--quick", "--overwrite", "--out", "{tmp}/d"], 2, "was not made by intsim",
         files={"d/summary.json": "[]", "d/comparison.png": "mine"}),
    Case("intsim demo --out", ["demo", "--quick", "--out", "{tmp}/d"], 2, "already holds a demo; pass --overwrite",
         files={"d/.intsim.json": '{"format": "intsim-folder", "kind": "demo"}', "d/summary.json": "{}"}),
    Case("intsim demo --out", ["demo", "--quick", "--out", "{tmp}/d"], 2, "already holds a demo",
         files={"d/summary.json": '{"epochs": 1, "seeds": [0], "rows": []}'}, id="demo-legacy-folder"),
    # ---- intsim sweep
    Case("intsim sweep --grid", ["sweep", "--grid", "{tmp}/none.toml", "--out", "{tmp}/sw"], 2, "grid file not found"),
    Case("intsim sweep --grid", SWEEP, 2, "g.toml: not UTF-8 text", files={"g.toml": LATIN1}),
    Case("intsim sweep --grid", SWEEP, 2, "g.toml: invalid TOML", files={"g.toml": "seeds = [\n"}),
    Case("intsim sweep --grid", SWEEP, 2, "grid: unknown key 'seed'", files=grid("seed = 3")),
    Case("intsim sweep --grid", SWEEP, 2, "grid: seeds: a count must be >= 1, got 0",
         files={"g.toml": GRID.format(top="", settings="").replace("seeds = [0]", "seeds = 0")}),
    Case("intsim sweep --grid", SWEEP, 2, "grid: settings: unknown key 'epoch'", files=grid(settings="epoch = 1")),
    Case("intsim sweep --grid", SWEEP, 2, "momentum: must be in [0, 1), got 5", files=grid(settings="momentum = 5")),
    Case("intsim sweep --grid", SWEEP, 2, "batch_size: must be >= 2, got 1",
         files={"g.toml": GRID.format(top="", settings="").replace("batch_size = 16", "batch_size = 1")}),
    Case("intsim sweep --grid", SWEEP, 2, "grid: overrides.acc_bits: expected integers", files=grid('[overrides]\nacc_bits = ["8"]')),
    Case("intsim sweep --grid", SWEEP, 2, "sets seed = 0, which a training run does not use",
         files={"g.toml": GRID.format(top="", settings="").replace('["fp32"]', '["d.toml"]'), "d.toml": "seed = 0\n" + DP_OK}),
    Case("intsim sweep --grid", SWEEP, 1, "failed: watch__icarl__fp32__seed0: DataFormatError: watch: malformed file",
         files=WATCH_GRID, id="sweep-data-dirs-watch-npy-payload"),
    Case("intsim sweep --workers", [*SWEEP[:5], "--workers", "-1"], 2, "--workers must be >= 0"),
    Case("intsim sweep --threads", [*SWEEP, "--threads", "0"], 2, "--threads must be >= 1"),
    Case("intsim sweep --scheduler", ["sweep", "--grid", "g", "--out", "o", "--scheduler", "tcp://127.0.0.1:9", "--workers", "1"], 2,
         "--workers sizes the local cluster; it cannot be used with --scheduler"),
    Case("intsim sweep --scheduler", ["sweep", "--grid", "{tmp}/g.toml", "--out", "{tmp}/sw", "--scheduler", "tcp://127.0.0.1:9",
                                      "--quiet"], 2, "--scheduler: cannot reach a Dask scheduler at 'tcp://127.0.0.1:9' within 10 s",
         files=grid()),
    Case("intsim sweep --out", SWEEP, 2, "is not empty (results.csv) and was not made by intsim",
         files={**grid(), "sw/results.csv": "mine"}, post=lambda t: _unchanged(t / "sw", {"results.csv": "mine"})),
    Case("intsim sweep --dry-run", [*SWEEP, "--dry-run"], 0, files=grid(), id="sweep-dry-run-handled"),
    # ---- intsim bench
    Case("intsim bench --only", ["bench", "--only", "nope"], 2, "invalid choice: 'nope'"),
    Case("intsim bench --json", ["bench", "--quick", "--json", "{tmp}"], 2, "is a folder; give a file name"),
    Case("intsim bench --json", ["bench", "--quick", "--json", "{tmp}/f/x.json"], 2, "is not a folder", files={"f": "a file"}),
]


def _npz(**arrays) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def _unchanged(folder: Path, files: dict) -> None:
    """The user's files are still there, unchanged, and intsim added nothing but its lock."""
    for rel, content in files.items():
        assert (folder / rel).read_text() == content, rel
    extra = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - set(files)
    assert extra <= {".intsim.lock"}, extra


IDS = case_ids(CASES)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("INTSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INTSIM_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input(case, isolated, capsys):
    check(case, isolated, capsys)
    not_pwned()


def test_every_entry_point_is_covered_and_the_counts_are_reported():
    entries = Counter(c.entry.split(" --")[0].split(" key ")[0] for c in CASES)
    for entry in ("quantize", "QuantSpec", "Accumulator", "int_matmul", "fwht", "Numerics",
                  "preset", "SRStream", "resolve_numerics", "datapath file", "datapath key",
                  "Linear", "Conv2d", "SGD", "read_checkpoint", "read_hdf5", "config file",
                  "grid file", "intsim cil", "config", "intsim demo", "intsim sweep",
                  "intsim bench"):
        assert entries[entry] > 0, entry
    outcomes = Counter(c.outcome for c in CASES)
    assert outcomes["clear error"] > 200 and outcomes["recorded status"] >= 2 and outcomes["handled"] >= 5


@pytest.mark.parametrize("bad", [dict(x=np.array([np.nan], np.float32)), dict(signed=False),
                                 dict(clip=1e-50), dict(scale=1e39), dict(bits=1)])
def test_a_refused_quantize_draws_nothing_from_the_sr_stream(bad):
    stream = SRStream(7)
    kw = {"x": X, "bits": 4, **bad}
    with pytest.raises(ValueError):
        quantize(kw.pop("x"), kw.pop("bits"), rounding="stochastic", rng=stream, **kw)
    assert stream.state() == SRStream(7).state()
    a = quantize(X, 4, rounding="stochastic", rng=stream)
    b = quantize(X, 4, rounding="stochastic", rng=SRStream(7))
    assert np.array_equal(a.codes, b.codes)


def test_the_linear_operator_declares_its_operand_ranges(monkeypatch):
    import intsim.core.linear_op as op
    from intsim.core.linear_op import linear_backward, linear_forward
    seen = []
    real = op.int_matmul

    def spy(a, b, acc, **kw):
        seen.append((kw["label"], kw["a_range"], kw["b_range"]))
        return real(a, b, acc, **kw)
    monkeypatch.setattr(op, "int_matmul", spy)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 16)).astype(np.float32)
    W = rng.standard_normal((12, 16)).astype(np.float32)
    y, ctx = linear_forward(x, W, preset("hdqt"), SRStream(0), label="l")
    linear_backward(np.ones_like(y), ctx)
    ranges = {label: (a, b) for label, a, b in seen}
    assert ranges["l/fwd"] == ((-7, 15), (-7, 7))          # auto-signed activations, weights
    assert ranges["l/grad_in"] == ((-7, 7), (-7, 7)) and ranges["l/grad_w"] == ((-7, 7), (-7, 7))


def test_the_census_script_counts_every_case_of_the_tables():
    """scripts/bad_input_census.py (the closing note's figures) reads the three tables."""
    import importlib.util
    import test_bad_input_hw
    import test_datasets_bad_input
    path = Path(__file__).resolve().parents[1] / "scripts" / "bad_input_census.py"
    spec = importlib.util.spec_from_file_location("bad_input_census", path)
    census = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(census)
    rows = census.census()
    assert len(rows) == len(CASES) + len(test_bad_input_hw.CASES) + len(test_datasets_bad_input.CASES)
    groups = Counter(r.group for r in rows)
    for g in ("API", "intsim cil", "intsim sweep", "intsim demo", "intsim golden", "intsim vectors",
              "intsim compare", "intsim overflow-report", "intsim bench", "config keys",
              "datapath keys", "file readers"):
        assert groups[g] > 0, g
    total = census.report(rows).splitlines()[-2].split()
    assert total[:3] == ["all", "entry", "points"] and int(total[3]) == len(rows)
    assert sum(map(int, total[4:])) == len(rows)          # clear error + recorded + handled
