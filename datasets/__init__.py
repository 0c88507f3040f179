"""Data sets for intsim (installed as ``intsim.datasets``).

Start with :func:`load_dataset`; every loader returns a :class:`Dataset`.  HAR raw recordings are
turned into the paper's 27-features-per-sensor-magnitude vectors (:func:`extract_features`) and
must be scaled with statistics of the training subjects only (:func:`fit_minmax`).

Your own data: ``load_dataset("myhar.csv")`` reads a CSV / Parquet / NPZ feature table or an NPZ
of images (formats: :mod:`intsim.datasets.byo`, docs/data.md); :func:`from_arrays` builds the
same :class:`Dataset` from arrays.  :func:`dataset_identity` gives the source files (absolute
path, SHA-256) and a content hash to record in config.json; :func:`check_identity` compares.

Modules: ``base`` (container, errors), ``har_features`` (feature extractor, windowing),
``scaling`` (train-only min-max), ``har_raw`` (DSADS / PAMAP2 / HAPT layouts), ``tables`` (the
paper's feature tables), ``images`` (CIFAR-100, IDX), ``watch`` (seglearn watch: release check,
safe .npz format), ``offline`` (watch, digits, Fashion-MNIST), ``synthetic`` (labelled synthetic
generators), ``byo`` (your own files), ``arrays`` (:func:`from_arrays`, validation rules),
``identity`` (data-set identity), ``safeio`` (UTF-8 text, restricted unpickling, hashing),
``args`` (argument checks), ``cache`` (HDF5 cache), ``registry`` (:func:`load_dataset`).
"""
from intsim.datasets.arrays import from_arrays
from intsim.datasets.base import ARCHIVES, DataFormatError, Dataset, remap_labels
from intsim.datasets.byo import FILE_SUFFIXES, load_file
from intsim.datasets.cache import default_cache_dir
from intsim.datasets.har_features import (FEATURE_NAMES, N_FEATURES, extract_features, magnitude,
                           magnitude_features, sliding_windows)
from intsim.datasets.har_raw import load_dsads_raw, load_hapt, load_pamap2_raw, read_dsads_segments, read_pamap2_file
from intsim.datasets.identity import DatasetIdentityError, check_identity, dataset_identity
from intsim.datasets.images import load_cifar100, read_idx
from intsim.datasets.offline import load_digits, load_fashion_mnist, load_watch
from intsim.datasets.registry import DATASET_NAMES, load_dataset
from intsim.datasets.scaling import MinMaxScaler, apply_minmax, fit_minmax, minmax_preprocess, scale_dataset
from intsim.datasets.synthetic import load_synthetic_har, make_synthetic_feature_table, make_synthetic_har_windows
from intsim.datasets.tables import load_feature_table
from intsim.datasets.watch import write_watch_npz

__all__ = [
    "ARCHIVES", "DATASET_NAMES", "DataFormatError", "Dataset", "DatasetIdentityError", "FEATURE_NAMES",
    "FILE_SUFFIXES", "MinMaxScaler",
    "N_FEATURES", "apply_minmax", "check_identity", "dataset_identity", "default_cache_dir",
    "extract_features", "fit_minmax", "from_arrays",
    "load_cifar100", "load_dataset", "load_digits", "load_dsads_raw", "load_fashion_mnist",
    "load_feature_table", "load_file", "load_hapt", "load_pamap2_raw", "load_synthetic_har", "load_watch",
    "magnitude", "magnitude_features", "minmax_preprocess", "make_synthetic_feature_table",
    "make_synthetic_har_windows",
    "read_dsads_segments", "read_idx", "read_pamap2_file", "remap_labels", "scale_dataset",
    "sliding_windows", "write_watch_npz",
]
