"""The hardware-verification subcommands: `intsim golden`, `intsim compare`,
`intsim overflow-report`.

intsim/cli/__init__.py adds them with `register(subparsers)`. Exit codes: 0 success (compare:
everything present matches), 1 a mismatch found by compare, 2 bad input (one line `intsim
COMMAND: error: ...` on stderr)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from intsim.cli.common import error, fail
from intsim.core.resolve import resolve_numerics
from intsim.experiments.outputs import check_output_folder
from intsim.formats.ownership import FolderBusy, hold, remove_if_unused, write_marker
from intsim.formats.atomic import atomic_write_text
from intsim.hw.compare import compare, format_report, to_json
from intsim.hw.explain import explain
from intsim.formats.hexfile import ORDERS, HexOptions, write_hex
from intsim.hw.coverage import load_coverage
from intsim.hw.golden import DEFAULT_BATCH, DEFAULT_MODEL, write_golden
from intsim.hw.model_spec import parse_model
from intsim.hw.overflow import format_table, report
from intsim.hw.overflow_events import format_events
from intsim.hw.overflow_train import trace_model_run, trace_training_run

GOLDEN_DESCRIPTION = """\
Run S seeded training steps of a model with the datapath's numerics on every layer and write
every intermediate, in execution order, to an HDF5 file: quantizer inputs, clamp points,
scaled values v, codes and scales, Hadamard outputs, the random bits consumed by stochastic
rounding, per-tile accumulator partials before and after the register, tile-sum register
values, outputs, gradient codes and the updated weights (SGD lr 0.01, momentum 0.9); every
integer matmul's group describes it (operands, layouts, reduction axis, accumulator, tile,
Hadamard block); the file also holds the run's trace and a coverage report, which is printed
(a loud warning when the vectors leave a feature of the datapath untested).

--model (the model-spec language, intsim/hw/model_spec.py):
  fcnet:IN,HIDDEN,FEATURE[,CLASSES]      FCNet + CLASSES-way head (default 10), batch --batch
  smallcnn:C,H,W,C1,C2[,CLASSES]         SmallCNN + head on (B, C, H, W) images
  linear:B,K,N                           one linear layer: (B, K)·(K, N)
  conv:B,C,H,W,COUT,KSIZE[,STRIDE[,PAD]] one conv layer (im2col: per image (L, C·KSIZE²)·(…, COUT))
  resnet-block:B,C,H,W,COUT[,STRIDE]     one ResNet basic block (two 3×3 convs)

Inputs are uniform [-1, 1) float32 from numpy default_rng(SEED); labels uniform over the
classes (networks with a head) or, for single layers and blocks, a projection loss with a
uniform output gradient. SEED also seeds the weight init; the stochastic-rounding stream uses
the datapath's `seed` if it has one, else SEED. The layout is documented in
intsim/formats/golden_file.py and the README.

examples:
  intsim golden --numerics examples/datapath_hdqt.toml --model fcnet:100,72,40,10 \\
      --batch 40 --steps 2 --seed 0 --out golden.h5 --hex hex/
  intsim golden --numerics hdqt --model conv:2,3,8,8,16,3,1,1 --select 'conv/fwd' --out c.h5
  intsim golden --from golden.h5 --hex sram/ --hex-order tile-blocked --hex-word-bits 32"""

COMPARE_DESCRIPTION = """\
Compare a dump (same HDF5 layout as the golden file, any subset of its tensors) with a golden
file. Walks the tensors in execution order and reports the first mismatching tensor, the
element index, expected and actual value and bits, and per-tensor mismatch counts. Tensors of
the golden file that the dump lacks are listed, not skipped silently. Integers compare as
values (--bit-patterns: modulo 2^bits); float32 tensors by their IEEE-754 patterns (a float64
dump must hold exact float32 values; integers only with --bit-patterns).

verdicts: MATCH, MISMATCH, NOTHING COMPARED (the dump holds no golden tensor), UNKNOWN PATHS
(dump datasets the golden file lacks; --allow-extra accepts them), EXPECTED MISSING (an
--expect GLOB's tensor is absent).

exit status: 0 MATCH (with --require-all: and nothing missing); 1 any other verdict; 2 bad
input (unreadable files, a GLOB matching nothing)."""

OVERFLOW_DESCRIPTION = """\
Per layer and matmul kind (fwd, grad_in, grad_w): saturation-event rate over training, log2
histogram of tile partial sums, the observed maximum vs the A2Q-style worst-case bound
tile·max|a|·max|b|, and the minimum accumulator width that would have avoided every event.
Writes overflow_summary.csv, overflow_steps.csv, overflow_hist.csv and overflow.png into
--out; several inputs are drawn side by side. --out must be new, empty or a folder of an
earlier overflow-report (a folder holding files intsim did not write is refused).

INPUT is a trace.h5 file (intsim.Trace.to_hdf5), a run folder containing one (e.g. an
`intsim cil` run), or a golden/vectors file (`intsim golden`, `intsim vectors`: sizes the
registers for those layers and operands, e.g. your own from `intsim vectors --operands`).
--train produces the traces first: FCNet on the real smartwatch data under each given
datapath (preset name or TOML file, optionally with ':hadamard=none|pad|largest_pow2'
appended), or with --model your own layers on seeded synthetic inputs. With --events N (or
traces that hold a per-event log, e.g. `intsim cil --events N`) it also reports which outputs,
columns and k positions saturate most (overflow_events.csv, overflow_events.png).

  intsim overflow-report --train hdqt_paper hdqt hdqt:hadamard=none --epochs 5 --out ovf/
  intsim overflow-report --train hdqt --model conv:8,3,16,16,16,3,1,1 --steps 20 --events 10000
  intsim overflow-report golden.h5 vectors.h5 --out ovf/"""


def hex_options_from(args) -> HexOptions:
    return HexOptions(order=args.hex_order, word_bits=args.hex_word_bits or 0,
                      pack_int4=args.pack_int4)


def print_coverage(cov, strict: bool) -> int:
    print(cov.format())
    if cov.is_thin:
        print(f"WARNING: thin coverage ({len(cov.thin)} gaps, listed above)"
              + ("; --strict-coverage: failing" if strict else ""), file=sys.stderr)
        return 1 if strict else 0
    return 0


def cmd_golden(args) -> int:
    try:
        opts = hex_options_from(args)
        if args.source:
            if not args.hex:
                return error("golden", "--from needs --hex DIR (it re-exports the hex files of "
                                       "an existing golden file)")
            given = [f for f in ("numerics", "model", "batch", "steps", "seed", "events")
                     if getattr(args, f) is not None] + (["select"] if args.select else [])
            if given:
                return error("golden", f"--from re-exports {args.source}: "
                                       f"--{given[0]} does not apply")
            manifest = write_hex(args.source, args.hex, opts)
            print(f"wrote $readmemh files and {manifest} from {args.source}")
            return print_coverage(load_coverage(args.source), args.strict_coverage)
        if args.numerics is None:
            return error("golden", "--numerics is required (or --from GOLDEN.h5 to re-export)")
        res = write_golden(args.numerics, args.model or DEFAULT_MODEL, args.batch,
                           args.steps if args.steps is not None else 2, args.seed, args.out,
                           args.hex, select=args.select or (), events=args.events,
                           hex_options=opts)
    except (ValueError, OSError) as e:
        return fail("golden", e)
    print(f"wrote {res.path}: {res.n_tensors} tensors, {res.n_matmuls} integer matmuls, "
          f"{res.steps} steps, losses {', '.join(f'{v:.6f}' for v in res.losses)}")
    if res.hex_manifest:
        print(f"wrote $readmemh files and {res.hex_manifest}")
    return print_coverage(res.coverage, args.strict_coverage)


def add_hex_options(p) -> None:
    """--hex, --hex-order, --hex-word-bits, --pack-int4 (golden and vectors)."""
    p.add_argument("--hex", metavar="DIR",
                   help="also write one $readmemh text file per tensor and manifest.json")
    p.add_argument("--hex-order", choices=ORDERS, default="c",
                   help="element order of the matmul operands in the hex files: c (as stored, "
                        "default), k-major (reduction axis outermost), tile-blocked (per K-tile, "
                        "k innermost, last tile zero-padded)")
    p.add_argument("--hex-word-bits", type=int, metavar="W",
                   help="pack the values of each row into W-bit words (first value in the low "
                        "bits; rows never straddle words)")
    p.add_argument("--pack-int4", action="store_true",
                   help="pack tensors of ≤ 4 bits two per byte, low nibble first, per row")
    p.add_argument("--strict-coverage", action="store_true",
                   help="exit 1 when the coverage report finds the vectors thin")


def cmd_compare(args) -> int:
    try:
        res = compare(args.golden, args.dump, bit_patterns=args.bit_patterns,
                      allow_extra=args.allow_extra, expect=args.expect or ())
    except (ValueError, OSError) as e:
        return fail("compare", e)
    print(format_report(res, args.max_list))
    out = to_json(res)
    if args.explain and res.mismatches:
        try:
            lines = explain(args.golden, args.dump, res.mismatches)
        except (ValueError, KeyError) as e:
            return error("compare", f"--explain: {e}")
        print("\n".join(lines))
        out["explain"] = lines
    if args.json:
        atomic_write_text(args.json, json.dumps(out, indent=1, default=str) + "\n")
    return res.exit_code(args.require_all)


def _train_traces(args, spec: str, out: str) -> str:
    """Train under `spec` (overflow-report --train) into OUT/runs/NAME; returns that folder."""
    dp = resolve_numerics(spec)
    run_dir = os.path.join(out, "runs", dp.numerics.name)
    if args.model:
        print(f"training {args.model} on synthetic inputs under {dp.numerics.name} → "
              f"{run_dir}", file=sys.stderr)
        cfg = trace_model_run(dp, args.model, run_dir, args.steps or 50, args.seed,
                              batch=args.batch, events=args.events)
        print(f"  {cfg['steps']} steps, final loss {cfg['final_loss']:.4g}", file=sys.stderr)
    else:
        print(f"training FCNet on watch under {dp.numerics.name} → {run_dir}",
              file=sys.stderr)
        cfg = trace_training_run(dp, run_dir, args.epochs, args.seed, hidden=args.hidden,
                                 batch=args.batch or 128,
                                 max_steps=args.max_steps or args.steps, events=args.events)
        print(f"  {cfg['steps']} steps, test accuracy {cfg['test_accuracy']:.3f}",
              file=sys.stderr)
    return run_dir


def cmd_overflow(args) -> int:
    sources = list(args.inputs or [])
    names = list(args.names) if args.names else None
    if args.model and not args.train:
        return error("overflow-report", "--model needs --train NUMERICS (it trains that model)")
    if args.model:
        try:
            parse_model(args.model)
        except ValueError as e:
            return error("overflow-report", e)
    if not sources and not args.train:
        return error("overflow-report", "give INPUT trace files/run folders or --train")
    if names and len(names) != len(sources) + len(args.train or []):
        return error("overflow-report", "--names needs one name per input (and per --train)")
    out = args.out or "overflow-report"
    new = not os.path.exists(out)
    try:
        check_output_folder(out, "overflow-report")
        with hold(out, "intsim overflow-report"):
            write_marker(out, "overflow-report")
            sources += [_train_traces(args, spec, out) for spec in args.train or []]
            summary = report(sources, out, names, plot=not args.no_plot)
    except (ValueError, OSError, FolderBusy) as e:
        if new:                  # bad input leaves no empty folder behind
            remove_if_unused(out)
        return fail("overflow-report", e)
    print(format_table(summary))
    ev = format_events(summary.attrs.get("events"), summary.attrs.get("logged", {}))
    if ev:
        print(ev)
    has_ev = len(summary.attrs.get("events", ()))
    print(f"\nwrote {out}/overflow_summary.csv, overflow_steps.csv, overflow_hist.csv"
          + ("" if args.no_plot else ", overflow.png")
          + (", overflow_events.csv" + ("" if args.no_plot else ", overflow_events.png")
             if has_ev else ""))
    return 0


RAW = argparse.RawDescriptionHelpFormatter


def register(subparsers) -> None:
    """Add `golden`, `compare` and `overflow-report` to an argparse subparsers object."""
    _register_golden(subparsers)
    _register_compare(subparsers)
    _register_overflow(subparsers)


def _register_golden(subparsers) -> None:
    raw = RAW
    p = subparsers.add_parser("golden", help="write golden vectors of seeded training steps",
                              description=GOLDEN_DESCRIPTION, formatter_class=raw)
    p.add_argument("--numerics", "--datapath", dest="numerics", metavar="PRESET|FILE.toml",
                   help="numerics preset or datapath description (TOML, see examples/); "
                        "--datapath is the same option")
    p.add_argument("--model", metavar="SPEC",
                   help=f"what to run (see above; default {DEFAULT_MODEL})")
    p.add_argument("--batch", type=int, default=None,
                   help=f"batch size of fcnet/smallcnn (default {DEFAULT_BATCH}; layer specs fix "
                        "their own)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 2)")
    p.add_argument("--seed", type=int, default=None,
                   help="data/init seed (default: the datapath's seed, else 0)")
    p.add_argument("--select", action="append", metavar="GLOB",
                   help="keep only the matmuls whose label layer/kind matches GLOB (e.g. "
                        "'backbone.fc2/*', '*/grad_w'); repeatable")
    p.add_argument("--events", type=int, metavar="N",
                   help="also log up to N overflow events (step, layer, kind, output, tile, k, "
                        "value before and after the limit) in trace/matmul_events")
    p.add_argument("--out", default="golden.h5", metavar="FILE.h5",
                   help="output HDF5 file (default golden.h5)")
    p.add_argument("--from", dest="source", metavar="GOLDEN.h5",
                   help="re-export the hex files of an existing golden file (with --hex)")
    add_hex_options(p)
    p.set_defaults(func=cmd_golden)


def _register_compare(subparsers) -> None:
    raw = RAW
    c = subparsers.add_parser("compare", help="compare a hardware dump with golden vectors",
                              description=COMPARE_DESCRIPTION, formatter_class=raw)
    c.add_argument("golden", metavar="GOLDEN.h5", help="file written by `intsim golden`")
    c.add_argument("dump", metavar="DUMP.h5", help="dump in the same layout (any subset)")
    c.add_argument("--require-all", action="store_true",
                   help="exit 1 also when a golden tensor is missing from the dump")
    c.add_argument("--bit-patterns", action="store_true",
                   help="compare integers modulo 2^bits (dumps of raw unsigned register "
                        "patterns, e.g. 0xf9 for -7 at 8 bits)")
    c.add_argument("--allow-extra", action="store_true",
                   help="accept dump datasets the golden file does not have (listed; without "
                        "this flag they fail the comparison: a mistyped path is never checked)")
    c.add_argument("--expect", action="append", metavar="GLOB",
                   help="golden tensors matching GLOB (fnmatch on paths, e.g. '*/acc') must be "
                        "in the dump; repeatable; a GLOB matching no golden tensor is an error")
    c.add_argument("--explain", action="store_true",
                   help="replay the first mismatching matmul output MAC by MAC from the golden "
                        "operands (k, a, b, exact sum, register), locate the first differing "
                        "tile from tile-level dumps and name the accumulator variants (wrap, "
                        "asymmetric range, tile ± 1, …) that reproduce the dump")
    c.add_argument("--max-list", type=int, default=20, metavar="N",
                   help="list at most N tensors per section (default 20)")
    c.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    c.set_defaults(func=cmd_compare)


def _register_overflow(subparsers) -> None:
    raw = RAW
    o = subparsers.add_parser("overflow-report",
                              help="accumulator overflow statistics of traced runs",
                              description=OVERFLOW_DESCRIPTION, formatter_class=raw)
    o.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="trace.h5 files or run folders containing one")
    o.add_argument("--out", metavar="DIR", help="output folder (default ./overflow-report)")
    o.add_argument("--names", nargs="+", metavar="NAME",
                   help="legend names, one per input (then per --train datapath)")
    o.add_argument("--train", nargs="+", metavar="NUMERICS",
                   help="first train FCNet on the watch data under each numerics (preset or "
                        "datapath TOML, optional ':hadamard=RULE') and report on those traces")
    o.add_argument("--epochs", type=int, default=5, help="--train epochs (default 5)")
    o.add_argument("--seed", type=int, default=0, help="--train seed (default 0)")
    o.add_argument("--hidden", type=int, default=None,
                   help="--train FCNet width (default: the 54 input features, in→in→in)")
    o.add_argument("--batch", type=int, default=None,
                   help="--train batch size (default 128 on watch, 32 for --model; layer specs "
                        "fix their own)")
    o.add_argument("--model", metavar="SPEC",
                   help="with --train: train this model (the `intsim golden --model` language, "
                        "e.g. conv:8,3,16,16,16,3,1,1) on seeded synthetic inputs instead of "
                        "FCNet on watch")
    o.add_argument("--steps", type=int, metavar="N",
                   help="--train --model: SGD steps (default 50); on watch: like --max-steps")
    o.add_argument("--events", type=int, metavar="N",
                   help="--train: also log up to N overflow events (where each saturation "
                        "happened); reported as the most frequent outputs, columns and k")
    o.add_argument("--max-steps", type=int, metavar="N",
                   help="--train: stop after N optimizer steps (smoke tests)")
    o.add_argument("--no-plot", action="store_true", help="write the CSVs only")
    o.set_defaults(func=cmd_overflow)
