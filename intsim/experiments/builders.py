"""What a run is built from: its numerics, data, scenario, network and learner.

Each builder is a function of the resolved RunConfig (and the data set), so a resumed run
rebuilds exactly what the interrupted one had.
"""
from __future__ import annotations

import numpy as np

from intsim.core.numerics import Numerics
from intsim.core.resolve import resolve_numerics
from intsim.datasets import load_dataset, minmax_preprocess
from intsim.datasets.scenario import Scenario
from intsim.experiments.config import ConfigError, RunConfig, dataset_label
from intsim.models.learners import Learner, OptionError, make_learner
from intsim.models.learners.base import BackboneFactory
from intsim.models.networks import FCNet, SmallCNN, resnet32, torch_default_init

CIFAR_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR_STD = (0.2675, 0.2565, 0.2761)


def run_numerics(source, overrides=None) -> Numerics:
    """The Numerics a run uses for `source` (preset or datapath file) with `overrides`.

    A datapath file's `seed` is refused: it seeds `intsim golden`'s stochastic-rounding
    stream, while a run derives its SR streams from the master seed (config.json seeds.sr);
    accepting it silently would suggest it was used."""
    try:
        dp = resolve_numerics(source, overrides)
    except (OSError, ValueError) as e:
        raise ConfigError(e if str(e).startswith("numerics") else f"numerics: {e}") from None
    if dp.seed is not None:
        raise ConfigError(f"numerics: the datapath file {source} sets seed = {dp.seed}, which "
                          f"a training run does not use (its stochastic-rounding streams "
                          f"derive from the run's --seed); remove the seed line (it is for "
                          f"intsim golden) or use a copy without it")
    return dp.numerics


def build_numerics(cfg: RunConfig) -> Numerics:
    """The concrete Numerics of cfg: its preset or datapath file with numerics_overrides, and
    the straight-through rule of the `ste` setting unless that is "numerics" (keep the
    numerics' own)."""
    nm = run_numerics(cfg["numerics"], cfg["numerics_overrides"])
    if cfg.get("ste") not in (None, "numerics") and not nm.is_float:
        nm = nm.replace(ste=cfg["ste"])
    return nm


def build_learner(cfg: RunConfig, scenario: Scenario, spec: dict, numerics: Numerics) -> Learner:
    """The learner of cfg["method"] with its method_params."""
    try:
        return make_learner(cfg["method"], scenario,
                            backbone_factory(spec, numerics, cfg.get("init") or "kaiming_normal"),
                            numerics, cfg.train_settings(), **cfg["method_params"])
    except (TypeError, OptionError) as e:
        raise ConfigError(f"method_params: {e}") from None


def _cifar_normalize(X_train, X_test):
    m = np.asarray(CIFAR_MEAN, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(CIFAR_STD, np.float32).reshape(1, 3, 1, 1)
    return (X_train - m) / s, (X_test - m) / s


def load_data(cfg: RunConfig):
    """The Dataset for cfg (shape adapted to the network)."""
    params = dict(cfg["dataset_params"])
    if cfg["dataset"] in ("digits", "fashion_mnist"):
        params.setdefault("flatten", cfg["network"] == "fcnet")
    try:
        ds = load_dataset(cfg["dataset"], cfg["data_dir"], **params)
    except ImportError as e:             # an optional reader (pyarrow for Parquet) is missing
        raise ConfigError(str(e)) from None
    if cfg["network"] == "fcnet" and ds.X.ndim == 4:
        ds = ds.replace(X=ds.X.reshape(len(ds), -1), feature_names=None)
    if cfg["network"] != "fcnet" and ds.X.ndim != 4:
        raise ConfigError(f"network {cfg['network']!r} needs image data (n, C, H, W); "
                          f"{dataset_label(cfg['dataset'])} gives {tuple(ds.X.shape)} (use "
                          f"network = 'fcnet')")
    return ds


def network_spec(cfg: RunConfig, ds) -> dict:
    """The JSON description of the network cfg asks for, sized to the data set ds."""
    if cfg["network"] == "fcnet":
        d = int(ds.X.shape[1])
        h = cfg["hidden"] or d
        return {"type": "fcnet", "in_dim": d, "hidden": h, "feature_dim": h, "n_hidden": 0,
                "note": "Linear(no bias)+ReLU: in_dim -> hidden -> feature_dim"}
    if cfg["network"] == "resnet32":
        return {"type": "resnet32", "in_channels": int(ds.X.shape[1]), "feature_dim": 64}
    return {"type": "smallcnn", "in_channels": int(ds.X.shape[1]), "channels": [32, 64],
            "feature_dim": 64}


def backbone_factory(spec: dict, numerics: Numerics, init: str = "kaiming_normal"
                     ) -> BackboneFactory:
    """seed -> a new backbone of the network described by `spec` (network_spec), its weights
    Kaiming normal or ("torch_default") PyTorch's default U(±1/√fan_in)."""
    def make(seed: int):
        if spec["type"] == "fcnet":
            net = FCNet(spec["in_dim"], spec["hidden"], spec["feature_dim"], spec["n_hidden"],
                        numerics=numerics, seed=seed)
        elif spec["type"] == "resnet32":
            net = resnet32(spec["in_channels"], numerics=numerics, seed=seed)
        else:
            net = SmallCNN(spec["in_channels"], tuple(spec["channels"]), numerics=numerics,
                           seed=seed)
        return torch_default_init(net) if init == "torch_default" else net
    return make


def build_scenario(cfg: RunConfig, ds) -> Scenario:
    """The class-incremental scenario (class order, subject split, memory) of cfg."""
    prep = None
    if cfg["scale"] == "minmax" and not ds.meta.get("prescaled", False):
        prep = minmax_preprocess()
    elif cfg["scale"] == "cifar":
        prep = _cifar_normalize
    return Scenario.from_dataset(
        ds, init_cls=cfg["init_cls"], increment=cfg["increment"], seed=cfg["seed"],
        n_test_subjects=cfg["n_test_subjects"], test_fraction=cfg["test_fraction"],
        memory_size=cfg["memory"], memory_mode=cfg["memory_mode"], order_rule=cfg["order_rule"],
        preprocess=prep, name=dataset_label(cfg["dataset"]), split=cfg["split"])


def seed_names(method: str, n_tasks: int) -> list[str]:
    """Every seed name a run derives (recorded in config.json before training starts)."""
    names = ["init", "sr", "exemplar"]
    for t in range(n_tasks):
        names += [f"shuffle/task{t}", f"augment/task{t}"]
        if method == "bic" and t > 0:
            names += [f"bic_val/{t}", f"bic_stage2/task{t}"]
    return names
