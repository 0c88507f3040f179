"""The `intsim cil` and `intsim demo` subcommands.

intsim/cli/__init__.py adds them with `register(subparsers)`. Bad input (unknown data set,
method or preset, a missing data folder, a bad config file) prints one line
`intsim cil: error: ...` to stderr and exits with code 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intsim.cli.common import DIVERGED, EXIT_CODES_HELP, INTERRUPTED, STORAGE, error
from intsim.cli.progress import RunBars
from intsim.core.presets import PRESET_NAMES
from intsim.datasets.byo import FILE_SUFFIXES
from intsim.datasets.registry import DATASET_NAMES
from intsim.experiments import demo
from intsim.experiments.cil_run import CILRun, RunDiverged
from intsim.experiments.records import evaluation_text
from intsim.experiments.config import (DATASET_DEFAULTS, DEFAULT_NUMERICS, DEFAULTS, PROTOCOLS,
                                       SETTINGS, ConfigError, dataset_label, resolve_config)
from intsim.experiments.seeds import run_seeds
from intsim.formats.ownership import FolderBusy
from intsim.formats.run_folder import CheckpointError
from intsim.models.learners import METHOD_NAMES

CIL_HELP = "run one class-incremental learning experiment"
CIL_DESCRIPTION = """\
Train a class-incremental learner task by task with the chosen integer numerics and write
config.json, metrics.json, trace.h5, cost.json (operation counts and energy of the run, as
`intsim cost`), history.jsonl (one row per epoch: loss and its terms, train accuracy, lr,
saturation events, seconds), checkpoints/, accuracy.png and loss.png into --out DIR.

--dataset is a data-set name or your own data file: a feature table (.csv, .parquet, .pq,
.npz: feature columns, a label column, optional subject and split columns) or images (.npz
with X (n, C, H, W), y, optional split); docs/data.md has the format. A relative path in a
--config file is taken from that file's folder. The file's path and SHA-256 are recorded in
config.json and checked on --resume. --numerics defaults to hdqt.

--seeds N (or a list 0,3,7) runs one folder per seed, --out DIR/seed<k>/, and writes the
table of mean ± std over the seeds to DIR/summary.json and DIR/comparison.png (N seeds start
at --seed); --resume continues each seed from its last checkpoint.

Defaults follow the paper's settings per data set (HAR: FCNet in->in->in, 100 epochs, lr 0.01,
batch 128, memory 200, 2 classes per task; CIFAR-100: ResNet-32, 170 epochs, lr 0.05 x0.1 at
60/100/140, memory 2000, 20 classes per task). --config FILE.toml supplies the same keys (and
more: milestones, hidden, network, method_params, dataset_params, ...); flags win over the
file. Every random choice derives from --seed.

--protocol paper switches to the published code's pipeline (initialisation, bias-free head,
evaluation in class-sorted batches of 128, herding features per class in batches of 64, the
trailing batch of one sample kept, the straight-through mask at 7, torch.topk's tie rule); each
is also a setting of its own (init, head, eval_batch_size, eval_order, feature_batching,
feature_batch_size, keep_single_batch, ste, tie_rule). docs/fidelity.md lists them with the
measured effect of each. The evaluation batch defaults to the training batch; --eval-scale
calibrated evaluates with per-layer activation scales fixed on the training data.

Output folder: --out must be new, empty or an intsim run folder; one that holds a run needs
--resume or --overwrite, and --overwrite removes only intsim's own files there (a folder
intsim did not make is refused, also with --overwrite). The run holds an OS lock on the
folder: a second run into it is refused, naming the holder. A datapath file (--numerics
FILE.toml) must not set `seed` (it is for intsim golden; a run's stochastic-rounding streams
derive from --seed).

""" + EXIT_CODES_HELP

DEMO_HELP = "iCaRL on the real smartwatch data with fp32, int4 and hdqt numerics"


def _add_cil_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", metavar="NAME|FILE",
                   help=f"data set: {', '.join(DATASET_NAMES)}, or a data file of your own "
                        f"({', '.join(FILE_SUFFIXES)}; docs/data.md)")
    p.add_argument("--data-dir", metavar="PATH",
                   help="folder with the downloaded data (dsads, pamap2, hapt, cifar100; "
                        "default $INTSIM_DATA/<dataset>)")
    p.add_argument("--method", choices=METHOD_NAMES, help="CIL method")
    p.add_argument("--numerics", metavar="PRESET|FILE.toml",
                   help=f"numerics preset ({', '.join(PRESET_NAMES)}) or a datapath TOML file "
                        f"(see 'Verify your hardware' in the README); default "
                        f"{DEFAULT_NUMERICS}")
    p.add_argument("--seed", type=int, help="master seed (default 0)")
    p.add_argument("--seeds", type=_seed_list, metavar="N|S1,S2,...",
                   help="run N seeds (--seed, --seed+1, ...) or the listed ones, one folder "
                        "each under --out, plus their mean ± std table and plot")
    p.add_argument("--epochs", type=int, help="epochs per task")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--batch-size", type=int, help="mini-batch size")
    p.add_argument("--memory", type=int, help="total exemplar memory")
    p.add_argument("--init-cls", type=int, help="classes in the first task")
    p.add_argument("--increment", type=int, help="classes per later task")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file with any of the settings")
    p.add_argument("--out", metavar="DIR", help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in DIR from its last checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="start over even if DIR already holds a run (removes only the files "
                        "intsim wrote there)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.add_argument("--events", dest="trace_events", type=int, metavar="N",
                   help="also log up to N overflow events of the traced steps (where each "
                        "saturation/wrap happened: step, layer, kind, output, tile, k, values) "
                        "in trace.h5 (trace/matmul_events, trace/quantize_events; default 0 = "
                        "off); `intsim overflow-report` summarises them")
    p.add_argument("--trace-every", type=int, metavar="N",
                   help="trace every N-th optimizer step (default 20; 0 = off)")
    p.add_argument("--protocol", choices=tuple(PROTOCOLS),
                   help="pipeline choices: intsim's (default) or the published code's (paper)")
    p.add_argument("--eval-batch-size", type=int, metavar="N",
                   help="evaluation batch (default: the training batch size)")
    p.add_argument("--eval-scale", choices=("dynamic", "calibrated"),
                   help="activation scales at evaluation: per batch (dynamic, default) or "
                        "fixed per layer, calibrated on the training data")
    _add_setting_flags(p.add_argument_group(
        "more settings", "the other keys of the --config file (the tables dataset_params,\n"
                         "method_params and numerics_overrides are set in the file only)"))


#: the help of the settings with a generated flag (_add_setting_flags)
SETTING_HELP = {
    "network": "network (fcnet for feature tables and data files)",
    "hidden": "hidden width of fcnet (unset: the input width)",
    "milestones": "epochs at which the lr is multiplied by lr_gamma, e.g. 60,100,140",
    "lr_gamma": "lr factor at each milestone",
    "momentum": "SGD momentum",
    "weight_decay": "SGD weight decay",
    "memory_mode": "exemplar memory: a fixed total or a fixed number per class",
    "exemplar_selection": "how exemplars are chosen",
    "split": "train/test split: the data set's own (official), by subject or by sample",
    "n_test_subjects": "subjects held out for testing (split by subjects)",
    "test_fraction": "fraction of samples held out (split by samples)",
    "order_rule": "how the class order is drawn from the seed",
    "scale": "input scaling (minmax: train-only, per column; per channel for images)",
    "augment": "random crop and flip of images while training",
    "init": "weight initialisation",
    "head": "classifier head",
    "eval_order": "order of the evaluation batches",
    "feature_batching": "batching of the herding feature passes",
    "feature_batch_size": "batch of the herding feature passes (default: evaluation batch)",
    "keep_single_batch": "keep a trailing training batch of one sample",
    "ste": "straight-through rule of the quantizers",
    "tie_rule": "tie rule of top-k predictions",
}


def _add_setting_flags(group) -> None:
    """A flag --KEY for every setting of SETTING_HELP, typed by its rule."""
    by_dataset = {k for d in DATASET_DEFAULTS.values() for k in d}
    for key, text in SETTING_HELP.items():
        default, rule = SETTINGS[key]
        shown = (" (default: the --protocol's)" if key in PROTOCOLS["intsim"] else
                 " (default: the data set's)" if key in by_dataset else
                 "" if default is None else f" (default {_shown(default)})")
        flag = "--" + key.replace("_", "-")
        if rule.kind == "bool":
            group.add_argument(flag, dest=key, action=argparse.BooleanOptionalAction,
                               default=None, help=text + shown)
        elif rule.kind == "milestones":
            group.add_argument(flag, dest=key, type=_int_list, metavar="E1,E2,...",
                               help=text + shown)
        else:
            kw = {"choices": rule.choices} if rule.choices else {
                "type": {"int": int, "float": float}.get(rule.kind, str),
                "metavar": "N" if rule.kind == "int" else "X"}
            group.add_argument(flag, dest=key, help=text + shown, **kw)


def _shown(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}"
                                         ) from None


def _seed_list(text: str):
    """'N' -> the count N; 'a,b,...' -> the seeds listed."""
    if "," not in text:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count or seeds separated by commas, "
                                             f"got {text!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"a count must be >= 1, got {n}")
        return n
    seeds = _int_list(text)
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0, got {text!r}")
    return seeds


def register(subparsers) -> None:
    """Add the `cil` and `demo` subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("cil", help=CIL_HELP, description=CIL_DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_cil_arguments(p)
    p.set_defaults(func=cmd_cil)

    d = subparsers.add_parser(
        "demo", help=DEMO_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="iCaRL on the offline real 'watch' HAR data (seglearn, 54 features) with\n"
                    "fp32, int4 and hdqt numerics over a few seeds; prints a comparison table\n"
                    "(mean ± std) and writes one run folder per preset and seed,\n"
                    "comparison.png and summary.json into --out.\n\n"
                    "--out follows the policy of intsim cil: a folder that already holds a\n"
                    "demo is replaced only with --overwrite (which removes only intsim's own\n"
                    "files); a non-empty folder intsim did not make is refused.\n\n"
                    + EXIT_CODES_HELP)
    d.add_argument("--out", metavar="DIR", default="intsim-demo",
                   help="output folder (default ./intsim-demo)")
    d.add_argument("--epochs", type=int, help=f"epochs per task (default {demo.EPOCHS})")
    d.add_argument("--quick", action="store_true",
                   help="1 epoch per task, 1 seed (smoke test; not with --epochs/--seeds)")
    d.add_argument("--seeds", type=int,
                   help=f"number of seeds, --seed, --seed+1, ... (default {demo.SEEDS})")
    d.add_argument("--seed", type=int, default=0, help="first master seed (default 0)")
    d.add_argument("--overwrite", action="store_true",
                   help="replace the demo already in --out")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=cmd_demo)


CLI_SETTINGS = ("dataset", "data_dir", "method", "numerics", "seed", "epochs", "lr", "batch_size",
                "memory", "init_cls", "increment", "out", "trace_every", "trace_events",
                "protocol", "eval_batch_size", "eval_scale", *SETTING_HELP)


def _fmt(v, spec=".2f") -> str:
    return "—" if v is None else format(v, spec)


def run_errors(command: str, fn, out: str = "DIR"):
    """fn() -> int, with the errors of a run reported as one line and its exit code (see
    intsim.cli.common): bad input 2, diverged 3, storage 4, interrupted 130."""
    again = "continue with --resume" if command == "cil" else "rerun with --overwrite"
    try:
        return fn()
    except RunDiverged as e:
        return error(command, e, DIVERGED)
    except (ConfigError, CheckpointError, FolderBusy, FileNotFoundError, NotADirectoryError,
            ValueError, TypeError) as e:
        return error(command, e)
    except OSError as e:                      # StorageError and any other I/O failure
        where = f" ({e.filename})" if getattr(e, "filename", None) and \
            str(e.filename) not in str(e) else ""
        return error(command, f"{e}{where}; free space or fix the cause, then {again}",
                     STORAGE)
    except KeyboardInterrupt:
        print(f"intsim {command}: interrupted; {again} --out {out}", file=sys.stderr)
        return INTERRUPTED


def cmd_cil(args: argparse.Namespace) -> int:
    return run_errors("cil", lambda: _cil(args), args.out)


def _cil(args: argparse.Namespace) -> int:
    cfg = resolve_config({k: getattr(args, k) for k in CLI_SETTINGS}, args.config)
    if args.seeds is not None:
        return _cil_seeds(args, cfg)
    run = CILRun.prepare(cfg, resume=args.resume, overwrite=args.overwrite)
    metrics = run.execute(RunBars("cil", args.quiet))
    if not args.quiet:
        line = (f"{dataset_label(cfg['dataset'])} {cfg['method']} {cfg['numerics']} "
                f"seed {cfg['seed']} "
                f"[{evaluation_text(cfg)}]: "
                f"CNN AIA {_fmt(metrics['aia'])}  last {_fmt(metrics['last'])}  "
                f"forgetting {_fmt(metrics['forgetting'])}")
        if "nme_aia" in metrics:
            line += f" | NME AIA {_fmt(metrics['nme_aia'])}  last {_fmt(metrics['nme_last'])}"
        print(line)
        print(f"wrote {cfg['out']}/ (config.json, metrics.json, trace.h5, cost.json, "
              f"history.jsonl, accuracy.png, loss.png, checkpoints/)")
    return 0


def _cil_seeds(args: argparse.Namespace, cfg) -> int:
    seeds = args.seeds if isinstance(args.seeds, list) else \
        list(range(cfg["seed"], cfg["seed"] + args.seeds))
    row, _ = run_seeds(cfg, seeds, resume=args.resume, overwrite=args.overwrite,
                       progress=lambda s: RunBars("cil", args.quiet, f"seed {s}"))
    if not args.quiet:
        print(demo.demo_table([row]))
        print(f"{dataset_label(cfg['dataset'])} {cfg['method']} [{evaluation_text(cfg)}]: "
              f"mean ± std over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); AIA / "
              f"last / forgetting of the CNN classifier, NME = nearest mean of exemplars")
        print(f"wrote {cfg['out']}/seed<k>/ (one run folder per seed), {cfg['out']}/"
              f"summary.json and {cfg['out']}/comparison.png")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.quick and (args.epochs is not None or args.seeds is not None):
        return error("demo", "--quick means 1 epoch and 1 seed; it cannot be combined with "
                             "--epochs or --seeds (leave out --quick to choose them)")
    epochs = 1 if args.quick else (args.epochs if args.epochs is not None else demo.EPOCHS)
    n_seeds = 1 if args.quick else (args.seeds if args.seeds is not None else demo.SEEDS)
    if epochs < 1 or n_seeds < 1:
        return error("demo", "--epochs and --seeds must be >= 1")
    if args.seed < 0:
        return error("demo", f"--seed: must be >= 0, got {args.seed}")
    return run_errors("demo", lambda: _demo(args, epochs, n_seeds), args.out)


def _demo(args: argparse.Namespace, epochs: int, n_seeds: int) -> int:
    seeds = list(range(args.seed, args.seed + n_seeds))
    out = Path(args.out)
    demo.check_demo_folder(out, args.overwrite)           # before the banner
    print(f"intsim demo: iCaRL on the real smartwatch 'watch' data (seglearn; 54 features, "
          f"7 classes in 4 tasks of 2/2/2/1, memory 200), {epochs} epoch(s) per task, "
          f"seed(s) {', '.join(map(str, seeds))}", flush=True)
    rows, _ = demo.run_demo(out, epochs, seeds, lambda name, seed: RunBars(
        "demo", args.quiet, f"{name} seed {seed}"), overwrite=args.overwrite)
    print(demo.demo_table(rows))
    print(f"AIA / last: accuracy on all seen classes (percent), mean ± std over {len(seeds)} "
          f"seed(s); forgetting: Chaudhry (mean over old tasks of best-before-last minus last); "
          f"no prefix = network classifier (CNN), NME = nearest mean of exemplars (float). "
          f"sat.events/op: accumulator saturation events per accumulation opportunity; "
          f"sat.outputs: share of matmul outputs hit by saturation (trace.h5, every "
          f"{DEFAULTS['trace_every']}th training step; — = fp32, no integer matmuls). "
          f"Evaluated in batches of the training batch "
          f"({DATASET_DEFAULTS['watch']['batch_size']}), data-set order, dynamic activation "
          f"scales.")
    print(f"wrote {out}/comparison.png, {out}/summary.json and one run folder per preset and "
          f"seed ({out}/<preset>-seed<k>/)")
    return 0
