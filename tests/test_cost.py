"""Cost model: counts against closed forms (FCNet, a conv layer, a ResNet basic block) and
against instrumented runs of the operator and of a training step; energy tables."""
import math

import numpy as np
import pytest

import intsim.kernels.quantize as qk
from intsim.core import linear_op
from intsim.core.costs import Op, linear_op_cost, stored_bytes
from intsim.core.modes import CostPart, MatmulKind, OpKind
from intsim.core.presets import preset
from intsim.core.quantizer import QuantSpec
from intsim.core.ranges import hadamard_range, width_of_range
from intsim.core.rng import SRStream
from intsim.core.trace import Trace
from intsim.hw.cost import Workload, cost, parse_workload, workload_step_ledgers
from intsim.models.networks import FCNet, IncrementalNet
from intsim.nn.conv import Conv2d
from intsim.nn.losses import cross_entropy
from intsim.nn.optim import SGD
from intsim.nn.training import loss_step, sgd_step

FWD, GI, GW = MatmulKind.FWD, MatmulKind.GRAD_IN, MatmulKind.GRAD_W
MUL = OpKind.INT_MUL


def counts(report, layer, kind):
    return report.step.counts[("student", layer, str(kind))]


def n(c, kind, bits=None, part=None, **kw):
    """Total of op kind (at width `bits`) in Counts c."""
    return sum(v for (p, op), v in c.items() if op.kind == kind
               and (bits is None or op.bits == bits) and (part is None or p == part)
               and all(getattr(op, k) == x for k, x in kw.items()))


def hadamard_widths(lo, hi, p):
    return [width_of_range(*hadamard_range(lo, hi, 1 << s))[0]
            for s in range(1, p.bit_length())]


# --------------------------------------------------------------------- closed forms
@pytest.fixture(scope="module")
def fcnet_hdqt():
    return cost("hdqt", "fcnet:405,405,405,19", 128)


def test_fcnet_hdqt_closed_forms(fcnet_hdqt):
    B, D, C, r = 128, 405, 19, 16
    for layer, K, N, signs in (("backbone.fc1", D, D, "ss"), ("backbone.fc2", D, D, "us"),
                               ("head", D, C, "us")):
        Np = 1 << (N - 1).bit_length()                       # "pad": 405 -> 512, 19 -> 32
        f, gi, gw = (counts(fcnet_hdqt, layer, k) for k in (FWD, GI, GW))
        assert n(f, MUL, bits=4, signs=signs) == B * K * N
        assert n(gi, MUL) == B * Np * K and n(gw, MUL) == N * B * K     # B = 128: no padding
        for c, macs in ((f, B * K * N), (gi, B * Np * K), (gw, N * B * K)):
            assert n(c, OpKind.INT_ADD, 8, CostPart.MATMUL) == macs          # 8-bit register
            assert n(c, OpKind.INT_SAT, 8, CostPart.SATURATE) == macs         # per MAC
        assert n(f, OpKind.INT_ADD, 32, CostPart.TILE_SUM) == B * N * (math.ceil(K / 32) - 1)
        # stochastic rounding: r bits per element of g_in (B × Np), g_w (N × B), a_bwd (B × K)
        assert n(gi, OpKind.RANDOM_BIT) == B * Np * r
        assert n(gw, OpKind.RANDOM_BIT) == (N * B + B * K) * r
        # Hadamard: float G over N (padded), integer w codes (±7) over N with exact growth
        assert n(gi, OpKind.FP_ADD, part=CostPart.HADAMARD) == B * Np * (Np.bit_length() - 1)
        for w in set(hadamard_widths(-7, 7, Np)):
            assert n(gi, OpKind.INT_ADD, w, CostPart.HADAMARD) == \
                K * Np * hadamard_widths(-7, 7, Np).count(w)
        a_lo = -7 if signs[0] == "s" else 0
        for w in set(hadamard_widths(a_lo, 7 if a_lo else 15, B)):
            assert n(gw, OpKind.INT_ADD, w, CostPart.HADAMARD) == \
                K * B * hadamard_widths(a_lo, 7 if a_lo else 15, B).count(w)
    assert fcnet_hdqt.per_step["random_bits"] == sum(
        (B * Np + N * B + B * K) * r for K, N, Np in ((D, D, 512), (D, D, 512), (D, C, 32)))


def test_preset_differences_closed_forms():
    B, D = 128, 405
    int4 = cost("int4", f"fcnet:{D},{D},{D},19", B)
    assert n(counts(int4, "backbone.fc1", GI), MUL) == B * D * D
    assert int4.per_step["compute_pj_by_part"].get("hadamard", 0) == 0
    paper = cost("hdqt_paper", f"fcnet:{D},{D},{D},19", B)
    gi, f1, f2 = (counts(paper, "backbone.fc1", GI), counts(paper, "backbone.fc1", FWD),
                  counts(paper, "backbone.fc2", FWD))
    assert n(gi, OpKind.INT_ADD, part=CostPart.HADAMARD) == 0       # 405 is odd: p = 1
    # clamp_tile registers hold the exact tile sum: untiled 405 × 7·7 -> 16 bits, one clamp
    # per output; forward tiles of 32: 32·49 -> 12 bits (signed input), 32·105 -> 13 bits
    assert n(gi, OpKind.INT_ADD, 16, CostPart.MATMUL) == B * D * D
    assert n(gi, OpKind.INT_SAT, 8, CostPart.SATURATE) == B * D
    assert n(f1, OpKind.INT_ADD, 12, CostPart.MATMUL) == B * D * D
    assert n(f2, OpKind.INT_ADD, 13, CostPart.MATMUL) == B * D * D
    assert n(f2, OpKind.INT_SAT, 8, CostPart.SATURATE) == B * D * math.ceil(D / 32)
    luq = cost("luq", f"fcnet:{D},{D},{D},19", B)
    gi = counts(luq, "backbone.fc2", GI)
    assert n(gi, OpKind.INT_SHIFT) == B * D * D and n(gi, MUL) == 0   # log2 codes: shifts
    assert n(counts(luq, "backbone.fc2", FWD), OpKind.FP_MUL, 64) > 0   # SAWB's float64 sums
    assert n(counts(luq, "backbone.fc2", GW), OpKind.RANDOM_BIT) == D * B * 16   # g_w only
    fp = cost("fp32", f"fcnet:{D},{D},{D},19", B)
    assert fp.per_step["macs"] == 3 * B * (2 * D * D + D * 19)
    assert fp.per_step["random_bits"] == 0 and fp.rel_fp32 == pytest.approx(1.0)
    assert int4.per_step["macs"] == fp.per_step["macs"]


def test_conv_layer_closed_forms():
    B, Cin, Cout, H = 4, 16, 32, 8
    r = cost("hdqt", f"conv:{Cin},{Cout},3,1,1,{H},{H}", B)
    R, K, G = H * H, Cin * 9, B                            # per image: 64 positions × 144
    f, gi, gw = (counts(r, "Conv2d", k) for k in (FWD, GI, GW))
    assert n(f, MUL) == G * R * K * Cout
    assert n(gi, MUL) == G * R * Cout * K                  # N = 32: a power of two
    assert n(gw, MUL) == G * Cout * R * K                  # per image over its 64 positions
    assert n(gi, OpKind.RANDOM_BIT) == G * R * Cout * 16
    assert n(gw, OpKind.RANDOM_BIT) == (G * Cout * R + G * R * K) * 16
    # one scale per image for activations and gradients, one for the weights
    assert n(f, OpKind.FP_MUL, part=CostPart.QUANTIZE) == 1 + G
    assert n(gw, OpKind.FP_MUL, part=CostPart.QUANTIZE) == 2 * G
    assert n(f, OpKind.INT_ADD, 32, CostPart.TILE_SUM) == G * R * Cout * (math.ceil(K / 32) - 1)
    assert n(gi, OpKind.FP_ADD, part=CostPart.LAYER) == G * R * K       # col2im
    assert n(gw, OpKind.INT_ADD, part=CostPart.HADAMARD) == G * K * R * 6   # log2(64) stages


def test_resnet_basic_block_closed_forms():
    B, C, H = 4, 16, 8
    r = cost("hdqt", f"block:{C},{C},1,{H},{H}", B, nonnegative_input=True)
    nel, R, K = B * C * H * H, H * H, C * 9
    for conv in ("conv1", "conv2"):
        assert n(counts(r, conv, FWD), MUL, bits=4, signs="us") == B * R * K * C
        assert n(counts(r, conv, GI), MUL) == n(counts(r, conv, GW), MUL) == B * R * K * C
    for bn in ("bn1", "bn2"):
        f, b = counts(r, bn, "forward"), counts(r, bn, "backward")
        assert n(f, OpKind.FP_ADD) == 4 * nel + 3 * C and n(f, OpKind.FP_MUL) == 3 * nel + 6 * C
        assert n(b, OpKind.FP_ADD) == 6 * nel and n(b, OpKind.FP_MUL) == 4 * nel + C
    assert n(counts(r, "BasicBlock", "forward"), OpKind.FP_ADD) == nel      # residual add
    assert n(counts(r, "BasicBlock", "backward"), OpKind.FP_ADD) == nel
    assert n(counts(r, "relu1", "forward"), OpKind.FP_CMP) == nel
    assert r.per_step["macs"] == 6 * B * R * K * C and r.unknown == []


def test_stored_bytes_pack_int4_and_masks():
    assert stored_bytes(5, 4) == 3 and stored_bytes(16, 1) == 2 and stored_bytes(3, 2) == 1
    assert stored_bytes(3, 5) == 3 and stored_bytes(3, 13) == 6 and stored_bytes(2, 32) == 8


# -------------------------------------------------------------- instrumented runs
class KernelCounter:
    """Counts what the quantize kernels were asked to do (elements, random bits, calls)."""

    def __init__(self, monkeypatch):
        self.elements = self.bits = self.int_calls = 0
        base, base_log2 = qk.quantize_kernel, qk.quantize_log2_kernel

        def quantize_kernel(x, codes, m, s, mode, qmin, qmax, sr_bits, key, offset):
            self.elements += x.size
            self.int_calls += 1
            self.bits += x.size * sr_bits if mode == qk.STOCHASTIC else 0
            return base(x, codes, m, s, mode, qmin, qmax, sr_bits, key, offset)

        def quantize_log2_kernel(x, codes, alpha, top, sr_bits, key, offset):
            self.elements += x.size
            self.bits += x.size * sr_bits
            return base_log2(x, codes, alpha, top, sr_bits, key, offset)
        monkeypatch.setattr(qk, "quantize_kernel", quantize_kernel)
        monkeypatch.setattr(qk, "quantize_log2_kernel", quantize_log2_kernel)
        self.butterflies = self.masked = 0
        transform, mask = linear_op.hadamard_transform, linear_op.zero_clipped

        def hadamard_transform(x, axis, rule):
            out, p = transform(x, axis, rule)
            if out is not x:                    # off_divide returns x untransformed
                self.butterflies += out.size * (p.bit_length() - 1)
            return out, p

        def zero_clipped(grad, x, t):
            self.masked += grad.size
            return mask(grad, x, t)
        monkeypatch.setattr(linear_op, "hadamard_transform", hadamard_transform)
        monkeypatch.setattr(linear_op, "zero_clipped", zero_clipped)


NUMERICS = {name: preset(name) for name in ("int4", "luq", "hdqt_paper", "hdqt_paper_hadoff",
                                            "hdqt")}
# float weights and a pow2 activation scale: float products next to integer ones
# (the two products with a float operand have no integer accumulator)
NUMERICS["float_w"] = preset("hdqt").replace(
    w_fwd=None, w_bwd=None, acc_fwd=None, acc_in=None, a_fwd=QuantSpec(bits=4, scale="pow2"))
NUMERICS["code_max"] = preset("hdqt").replace(ste="code_max", rescale_order="left_to_right")


@pytest.mark.parametrize("name", list(NUMERICS))
@pytest.mark.parametrize("G, R, K, N, negative", [(1, 12, 20, 13, True), (3, 9, 10, 6, False),
                                                  (1, 16, 40, 8, False)])
def test_operator_counts_equal_an_instrumented_run(monkeypatch, name, G, R, K, N, negative):
    nm = NUMERICS[name]
    rng = np.random.default_rng(G * 100 + R)
    x = rng.standard_normal((G, R, K)).astype(np.float32)
    x = x if negative else np.abs(x)
    W = rng.standard_normal((N, K)).astype(np.float32)
    kc = KernelCounter(monkeypatch)
    trace = Trace()
    y, ctx = linear_op.linear_forward(x, W, nm, SRStream(3), trace, "L")
    linear_op.linear_backward(rng.standard_normal(y.shape).astype(np.float32), ctx)
    oc = linear_op_cost(nm, G, R, K, N, x_negative=negative)
    total = oc.total()
    assert kc.bits == total.total(OpKind.RANDOM_BIT) == sum(oc.random_bits.values())
    assert kc.elements == total.total(OpKind.INT_SAT, CostPart.QUANTIZE)
    assert kc.int_calls == sum(v for (p, op), v in total.items() if p == CostPart.QUANTIZE
                               and op == Op(OpKind.FP_MUL, 32))
    assert kc.butterflies == total.total(part=CostPart.HADAMARD)
    assert kc.masked == total.total(OpKind.FP_CMP, CostPart.RESCALE)
    recs = {r["label"]: r for r in trace.records if r["op"] == "matmul"}
    assert recs, "every preset here runs integer products"
    for kind, c in oc.counts.items():
        macs = c.total(OpKind.INT_MUL) + c.total(OpKind.INT_SHIFT)
        if f"L/{kind}" not in recs:                        # a float32 product: not traced
            assert macs == 0 and c.total(OpKind.FP_MUL, CostPart.MATMUL) == math.prod(
                oc.shapes[kind])
            continue
        rec = recs[f"L/{kind}"]
        assert (rec["rows"], rec["K"], rec["N"]) == oc.shapes[kind]
        assert rec["macs"] == macs
        tiles = rec["tiles"]
        sums = c.total(OpKind.INT_ADD, CostPart.TILE_SUM)
        assert sums == tiles - rec["outputs"]              # n_tiles - 1 additions per output


def test_network_walk_equals_an_instrumented_training_step(monkeypatch):
    nm, B = preset("hdqt"), 12
    work = Workload("fcnet:20,24,24,5", IncrementalNet(FCNet(20, 24, 24), 5), (20,), 5)
    ledger, _, unknown = workload_step_ledgers(work, nm, B)
    assert unknown == []
    net = IncrementalNet(FCNet(20, 24, 24, numerics=nm), 5, numerics=nm)
    net.set_rng(SRStream(1))
    trace = Trace()
    net.set_trace(trace)
    kc = KernelCounter(monkeypatch)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, (B, 20)).astype(np.float32), rng.integers(0, 5, B)
    sgd_step(SGD(net, 0.01, 0.9, 2e-4), lambda a, b: loss_step(net, a, b, cross_entropy), x, y)
    assert kc.bits == ledger.ops(OpKind.RANDOM_BIT)
    assert kc.butterflies == ledger.total_counts().total(part=CostPart.HADAMARD)
    for r in (r for r in trace.records if r["op"] == "matmul"):
        layer, kind = r["label"].rsplit("/", 1)
        c = ledger.counts[("student", layer, kind)]
        assert c.total(OpKind.INT_MUL) == r["macs"], r["label"]


def test_model_specs_and_bad_input():
    assert parse_workload("resnet32").sample_shape == (3, 32, 32)
    assert parse_workload("smallcnn:1,8,8,10").classes == 10
    for bad, msg in (("mlp:3", "unknown kind"), ("fcnet:3,4", "fcnet:IN,HIDDEN"),
                     ("conv:1,2,0,1,0,8,8", "K and STRIDE"), ("linear:a,b", "linear:IN,OUT")):
        with pytest.raises(ValueError, match=msg):
            parse_workload(bad)
    with pytest.raises(ValueError, match="batch"):
        cost("hdqt", "linear:4,4", batch=1)
    with pytest.raises(ValueError, match="preset"):
        cost("nope", "linear:4,4")


def test_epoch_is_the_sum_of_its_steps():
    r = cost("hdqt", "fcnet:16,16,16,4", 8, samples=21)           # batches 8, 8, 5
    full, last = cost("hdqt", "fcnet:16,16,16,4", 8), cost("hdqt", "fcnet:16,16,16,4", 5)
    assert r.per_epoch["macs"] == 2 * full.per_step["macs"] + last.per_step["macs"]
    assert r.per_epoch["pj"] == pytest.approx(2 * full.per_step["pj"] + last.per_step["pj"])


@pytest.mark.parametrize("name", ["hdqt", "hdqt_paper"])      # per_image, per_batch scales
def test_conv_walk_equals_an_instrumented_conv_step(monkeypatch, name):
    nm, B = preset(name), 3
    r = cost(name, "conv:3,8,3,1,1,6,6", B)
    conv = Conv2d(3, 8, 3, 1, 1, bias=False, numerics=nm, rng=SRStream(2))
    trace = Trace()
    conv.set_trace(trace)
    kc = KernelCounter(monkeypatch)
    x = np.random.default_rng(1).standard_normal((B, 3, 6, 6)).astype(np.float32)
    y = conv.forward(x)
    conv.backward(np.ones_like(y))
    total = r.step.total_counts()
    assert kc.bits == total.total(OpKind.RANDOM_BIT)
    assert kc.elements == total.total(OpKind.INT_SAT, CostPart.QUANTIZE)
    assert kc.int_calls == sum(v for (p, op), v in total.items() if p == CostPart.QUANTIZE
                               and op == Op(OpKind.FP_MUL, 32))
    assert kc.butterflies == total.total(part=CostPart.HADAMARD)
    assert kc.masked == total.total(OpKind.FP_CMP, CostPart.RESCALE)
    for rec in (r for r in trace.records if r["op"] == "matmul"):
        kind = rec["label"].rsplit("/", 1)[1]
        assert r.step.counts[("student", "Conv2d", kind)].total(OpKind.INT_MUL) == rec["macs"]
