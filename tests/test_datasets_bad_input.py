"""Bad input to every loader in intsim.datasets: a table of cases, one line each.

Each case: (id, callable, args, kwargs, files, expected exception, expected substring).
``files`` maps a path relative to the test's tmp folder to its content (str, bytes, or a
zero-argument callable returning either); ``{tmp}`` in string args / kwargs is that folder.
The test asserts the exception type and that the message contains the substring (which names
the argument or the file, plus the expected form).  Adding a case is one line.
"""
from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from bad_input_cases import EVIL_PICKLE, evil_npy, not_pwned
from intsim.datasets import (DataFormatError, DatasetIdentityError, check_identity, dataset_identity,
                             fit_minmax, from_arrays, load_cifar100, load_dataset, load_digits,
                             load_fashion_mnist, load_hapt, load_pamap2_raw, load_watch, read_idx)
from intsim.datasets.scenario import Scenario
from intsim.datasets.synthetic import make_synthetic_feature_table, make_synthetic_har_windows

FNF, VE, TE, DFE = FileNotFoundError, ValueError, TypeError, DataFormatError


# ------------------------------------------------------------------- content builders
def npz(**arrays) -> bytes:
    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def watch(**over) -> bytes:
    a = {"X": np.zeros((600, 6)), "lengths": np.array([300, 300]), "y": np.array([0, 1]),
         "subject": np.array([1, 2]), "y_labels": np.array(["a", "b"])}
    a.update(over)
    return npz(**{k: v for k, v in a.items() if v is not None})


def table(n_rows: int, n_cols: int) -> str:
    """Headerless numeric table: features, then label (1 or 2) and person (1..) columns."""
    rows = []
    for i in range(n_rows):
        rows.append(",".join([f"{0.01 * j:.2f}" for j in range(n_cols - 2)] + [str(1 + i % 2), str(1 + i % 3)]))
    return "\n".join(rows) + "\n"


def dsads_seg(rows: int = 125) -> str:
    return "\n".join(",".join(["1.0"] * 45) for _ in range(rows)) + "\n"


def pamap(rows: int = 300, cols: int = 54, activity: int = 1) -> str:
    line = " ".join([f"{activity if j == 1 else 1.0}" for j in range(cols)])
    return "\n".join([line] * rows) + "\n"


def hapt(ncols: int = 561, y_train: str = "1\n2\n", subj_train: str = "1\n2\n") -> dict:
    x = "\n".join(" ".join(["0.1"] * ncols) for _ in range(2)) + "\n"
    return {"Train/X_train.txt": x, "Train/y_train.txt": y_train, "Train/subject_id_train.txt": subj_train,
            "Test/X_test.txt": x, "Test/y_test.txt": "1\n2\n", "Test/subject_id_test.txt": "3\n3\n"}


def cifar(train: bytes | None = None) -> dict:
    ok = pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "fine_labels": [0, 1]}, protocol=2)
    return {"cifar-100-python/train": train if train is not None else ok, "cifar-100-python/test": ok}


def idx(arr: np.ndarray, magic: int = 0x08) -> bytes:
    return bytes([0, 0, magic, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


def fmnist(images: np.ndarray | None = None) -> dict:
    imgs = images if images is not None else np.zeros((2, 28, 28), np.uint8)
    out = {}
    for split in ("train", "t10k"):
        out[f"{split}-images-idx3-ubyte.gz"] = gzip.compress(idx(imgs))
        out[f"{split}-labels-idx1-ubyte.gz"] = gzip.compress(idx(np.zeros(len(imgs), np.uint8)))
    return out


CSV_OK = "f0,f1,label,subject\n0.1,0.2,a,1\n0.3,0.4,b,2\n"
LATIN1 = "f0,label\n1,caf\xe9\n2,b\n".encode("latin-1")

X4, Y4 = np.zeros((4, 2)), np.array([0, 1, 0, 1])
_IDENT = {"name": "x", "files": [{"path": "/nonexistent/x.csv", "sha256": "0" * 64, "bytes": 1}], "params": {}}

# ------------------------------------------------------------------------------- cases
# (id, callable, args, kwargs, files, exception, substring)
CASES = [
    # ---- load_dataset: name and common arguments
    ("name-int", load_dataset, (5,), {}, {}, VE, "name must be a data set name (watch, digits"),
    ("name-none", load_dataset, (None,), {}, {}, VE, "name must be a data set name"),
    ("name-empty", load_dataset, ("",), {}, {}, VE, "name must be a data set name"),
    ("name-unknown", load_dataset, ("dsadz",), {}, {}, VE, "unknown data set 'dsadz'"),
    ("name-bad-suffix", load_dataset, ("data.txt",), {}, {}, VE, "suffix '.txt' is not a data-file suffix"),
    ("name-pathlike-no-suffix", load_dataset, (Path("mydata"),), {}, {}, VE, "is a path without a .csv"),
    ("cache-not-bool", load_dataset, ("watch",), {"cache": "yes"}, {}, VE, "cache must be True or False"),
    ("data_dir-int", load_dataset, ("watch", 5), {}, {}, VE, "data_dir must be a path"),
    ("cache_dir-float", load_dataset, ("watch",), {"cache_dir": 3.5}, {}, VE, "cache_dir must be a path"),
    ("unknown-param", load_dataset, ("watch", "{tmp}"), {"windw": 3}, {}, TE, "unknown parameter(s) ['windw']"),
    # ---- watch
    ("watch-missing", load_dataset, ("watch", "{tmp}"), {}, {}, FNF, "watch_dataset.npy (nor"),
    ("watch-dir-missing", load_dataset, ("watch", "{tmp}/nope"), {}, {}, FNF, "nope/watch_dataset.npy"),
    ("watch-window-0", load_dataset, ("watch", "{tmp}"), {"window": 0}, {"watch_dataset.npz": watch()}, VE,
     "load_watch: window must be an int >= 4, got 0"),
    ("watch-window-str", load_watch, (), {"window": "128", "path": "{tmp}/watch_dataset.npz"},
     {"watch_dataset.npz": watch()}, VE, "window must be an int >= 4, got '128' (str)"),
    ("watch-step-0", load_watch, (), {"step": 0, "path": "{tmp}/watch_dataset.npz"},
     {"watch_dataset.npz": watch()}, VE, "step must be an int >= 1"),
    ("watch-window-huge", load_dataset, ("watch", "{tmp}"), {"window": 10**6, "cache": False},
     {"watch_dataset.npz": watch()}, VE, "window=1000000 is longer than every recording"),
    ("watch-npz-missing-key", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": watch(lengths=None)}, DFE, "watch_dataset.npz: missing key(s) ['lengths']"),
    ("watch-npz-unknown-key", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": watch(labels=np.zeros(2))}, DFE, "unknown key(s) ['labels']"),
    ("watch-npz-lengths", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": watch(lengths=np.array([300, 200]))}, DFE, "lengths sum to 500, X has 600 rows"),
    ("watch-npz-nan", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": watch(X=np.full((600, 6), np.nan))}, DFE, "recording 0 must hold finite numbers"),
    ("watch-npz-channels", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": watch(X=np.zeros((600, 5)))}, DFE, "recording 0 has shape (300, 5), expected (n, 6)"),
    ("watch-npz-y-range", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": watch(y=np.array([0, 5]))}, DFE, "y must lie in 0..1"),
    ("watch-npz-truncated", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": lambda: watch()[:100]}, DFE, "watch_dataset.npz: not a readable .npz (BadZipFile"),
    ("watch-npz-empty", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": b""}, DFE, "watch_dataset.npz: not a readable .npz"),
    ("watch-npz-corrupt", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npz": lambda: _flip(watch(X=np.ones((600, 6))), 200)}, DFE, "watch_dataset.npz: corrupt array"),
    ("watch-npy-pickle", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npy": EVIL_PICKLE}, DFE, "watch_dataset.npy: not seglearn 1.2.5's watch_dataset.npy"),
    ("watch-npy-object-array", load_dataset, ("watch", "{tmp}"), {"cache": False},
     {"watch_dataset.npy": evil_npy}, DFE, "watch_dataset.npy: not seglearn 1.2.5's watch_dataset.npy"),
    ("watch-bad-suffix", load_watch, (), {"path": "{tmp}/w.pkl"}, {"w.pkl": EVIL_PICKLE}, DFE,
     "unsupported suffix '.pkl'"),
    # ---- digits, synthetic
    ("digits-data_dir", load_dataset, ("digits", "{tmp}"), {}, {}, VE, "takes no data_dir"),
    ("digits-flatten", load_digits, (), {"flatten": "no"}, {}, VE, "flatten must be True or False"),
    ("synthetic-data_dir", load_dataset, ("synthetic", "{tmp}"), {}, {}, VE, "takes no data_dir"),
    ("synthetic-classes-0", load_dataset, ("synthetic",), {"n_classes": 0}, {}, VE, "counts must be >= 1"),
    ("synthetic-classes-str", make_synthetic_har_windows, (), {"n_classes": "3"}, {}, VE,
     "n_classes must be an int, got '3'"),
    ("synthetic-seed-neg", make_synthetic_feature_table, (), {"seed": -1}, {}, VE, "seed must be an int >= 0"),
    ("synthetic-table-size", load_dataset, ("dsads_synthetic",), {"n_samples": 0}, {}, VE, "sizes must be >= 1"),
    # ---- dsads (feature table and raw layout)
    ("dsads-dir-missing", load_dataset, ("dsads", "{tmp}/nope"), {}, {}, FNF, "data_dir is not a folder"),
    ("dsads-layout", load_dataset, ("dsads", "{tmp}"), {"layout": "tabel"}, {}, VE,
     "layout must be 'auto', 'raw' or 'table'"),
    ("dsads-csv-407", load_dataset, ("dsads", "{tmp}"), {"cache": False}, {"dsads.csv": table(3, 407)}, DFE,
     "dsads.csv: 407 columns, expected 408 (405 feature columns"),
    ("dsads-csv-latin1", load_dataset, ("dsads", "{tmp}"), {"cache": False}, {"dsads.csv": LATIN1}, DFE,
     "dsads.csv: not UTF-8 text: byte 0xe9"),
    ("dsads-csv-text", load_dataset, ("dsads", "{tmp}"), {"cache": False},
     {"dsads.csv": table(2, 408) + "abc" + table(1, 408)[4:]}, DFE,
     "dsads.csv: non-numeric value 'abc' in row 2, column 0"),
    ("dsads-csv-empty", load_dataset, ("dsads", "{tmp}"), {"cache": False}, {"dsads.csv": "\n"}, DFE,
     "dsads.csv: file is empty"),
    ("dsads-csv-drop-int", load_dataset, ("dsads", "{tmp}"), {"cache": False, "drop_subjects": 5},
     {"dsads.csv": table(3, 408)}, VE, "drop_subjects must be a list of ints"),
    ("dsads-csv-all-dropped", load_dataset, ("dsads", "{tmp}"), {"cache": False, "drop_classes": (1, 2)},
     {"dsads.csv": table(3, 408)}, DFE, "no rows left after dropping"),
    ("dsads-raw-first-short", load_dataset, ("dsads", "{tmp}"), {"cache": False},
     {"a01/p1/s01.txt": dsads_seg(100), "a01/p1/s02.txt": dsads_seg()}, DFE,
     "s01.txt: 100 rows, expected 125"),
    ("dsads-raw-latin1", load_dataset, ("dsads", "{tmp}"), {"cache": False},
     {"a01/p1/s01.txt": b"1.0,\xff\n"}, DFE, "s01.txt: not UTF-8 text: byte 0xff at offset 4"),
    ("dsads-raw-empty", load_dataset, ("dsads", "{tmp}"), {"cache": False}, {"a01/p1/s01.txt": ""}, DFE,
     "s01.txt: file is empty"),
    ("dsads-raw-columns", load_dataset, ("dsads", "{tmp}"), {"cache": False}, {"a01/p1/s01.txt": "1,2,3\n"}, DFE,
     "s01.txt: 3 values in 1 rows; every row needs 45"),
    ("dsads-raw-param", load_dataset, ("dsads", "{tmp}"), {"window": 5}, {"a01/p1/s01.txt": dsads_seg()}, TE,
     "unknown parameter(s) ['window']"),
    ("dsads-raw-none", load_dataset, ("dsads", "{tmp}"), {}, {"a01/readme.txt": "x"}, FNF, "no aNN/pN/sNN.txt"),
    # ---- pamap2
    ("pamap2-53-cols", load_dataset, ("pamap2", "{tmp}"), {"cache": False},
     {"Protocol/subject101.dat": pamap(cols=53)}, DFE, "subject101.dat: 53 columns, expected 54"),
    ("pamap2-latin1", load_dataset, ("pamap2", "{tmp}"), {"cache": False},
     {"Protocol/subject101.dat": b"1 \xe9 2\n"}, DFE, "subject101.dat: not UTF-8 text"),
    ("pamap2-empty", load_dataset, ("pamap2", "{tmp}"), {"cache": False}, {"Protocol/subject101.dat": ""}, DFE,
     "subject101.dat: file is empty"),
    ("pamap2-window-2", load_pamap2_raw, ("{tmp}",), {"window": 2}, {"Protocol/subject101.dat": pamap()}, VE,
     "window must be an int >= 4, got 2"),
    ("pamap2-window-huge", load_dataset, ("pamap2", "{tmp}"), {"cache": False, "window": 100000},
     {"Protocol/subject101.dat": pamap()}, VE, "no complete window=100000-sample window"),
    ("pamap2-drop-str", load_dataset, ("pamap2", "{tmp}"), {"cache": False, "drop_classes": "24"},
     {"Protocol/subject101.dat": pamap()}, VE, "drop_classes must be a list of ints (e.g. (3, 4)), got '24' (str)"),
    ("pamap2-table-244", load_dataset, ("pamap2", "{tmp}"), {"cache": False}, {"pamap.csv": table(3, 244)}, DFE,
     "pamap.csv: 244 columns, expected 245"),
    ("pamap2-activity-float", load_pamap2_raw, ("{tmp}",), {}, {"Protocol/subject101.dat": pamap(activity=1.5)},
     DFE, "column 2 (activity id) must hold integers"),
    # ---- hapt
    ("hapt-missing", load_dataset, ("hapt", "{tmp}"), {}, {}, FNF, "Train/X_train.txt"),
    ("hapt-560-cols", load_dataset, ("hapt", "{tmp}"), {"cache": False}, hapt(560), DFE,
     "X_train.txt: 560 columns, expected 561"),
    ("hapt-latin1", load_dataset, ("hapt", "{tmp}"), {"cache": False}, {**hapt(), "Train/y_train.txt": b"1\n\xe9\n"},
     DFE, "y_train.txt: not UTF-8 text"),
    ("hapt-labels-latin1", load_hapt, ("{tmp}",), {}, {**hapt(), "activity_labels.txt": b"1 caf\xe9\n"}, DFE,
     "activity_labels.txt: not UTF-8 text"),
    ("hapt-all-dropped", load_hapt, ("{tmp}",), {"drop_subjects": (1, 2, 3)}, hapt(), VE,
     "no rows of"),
    ("hapt-drop-int", load_hapt, ("{tmp}",), {"drop_subjects": 7}, hapt(), VE, "drop_subjects must be a list of ints"),
    ("hapt-rows-differ", load_hapt, ("{tmp}",), {}, hapt(y_train="1\n"), DFE, "row counts differ"),
    ("hapt-label-range", load_hapt, ("{tmp}",), {}, hapt(y_train="1\n13\n"), DFE, "labels must be 1..12"),
    # ---- cifar100
    ("cifar-missing", load_dataset, ("cifar100", "{tmp}"), {}, {}, FNF, "cifar-100-python/train"),
    ("cifar-label_type", load_cifar100, ("{tmp}",), {"label_type": "fin"}, cifar(), VE,
     "label_type must be 'fine' or 'coarse'"),
    ("cifar-truncated", load_cifar100, ("{tmp}",), {}, cifar(train=cifar()["cifar-100-python/test"][:50]), DFE,
     "train: not a CIFAR python pickle"),
    ("cifar-payload", load_cifar100, ("{tmp}",), {}, cifar(train=EVIL_PICKLE), DFE, "refusing to load"),
    ("cifar-shape", load_cifar100, ("{tmp}",), {},
     cifar(train=pickle.dumps({"data": np.zeros((0, 3072), np.uint8), "fine_labels": []})), DFE,
     "'data' must be uint8 (n, 3072) with n >= 1"),
    ("cifar-data_dir-int", load_cifar100, (3,), {}, {}, VE, "data_dir must be a path"),
    # ---- fashion-mnist / IDX
    ("fmnist-missing", load_fashion_mnist, ("{tmp}",), {}, {}, FNF, "train-images-idx3-ubyte.gz"),
    ("fmnist-flatten", load_fashion_mnist, ("{tmp}",), {"flatten": 1}, fmnist(), VE, "flatten must be True or False"),
    ("fmnist-not-gzip", load_fashion_mnist, ("{tmp}",), {}, {**fmnist(), "train-images-idx3-ubyte.gz": b"junk"},
     DFE, "train-images-idx3-ubyte.gz: cannot read (BadGzipFile"),
    ("fmnist-truncated-gzip", load_fashion_mnist, ("{tmp}",), {},
     {**fmnist(), "train-images-idx3-ubyte.gz": lambda: fmnist()["train-images-idx3-ubyte.gz"][:-9]}, DFE,
     "train-images-idx3-ubyte.gz: cannot read"),
    ("fmnist-image-size", load_fashion_mnist, ("{tmp}",), {}, fmnist(np.zeros((2, 27, 28), np.uint8)), DFE,
     "expected n >= 1 images of 28 x 28"),
    ("idx-magic", read_idx, ("{tmp}/x.idx",), {}, {"x.idx": b"\x01\x02\x03\x04"}, DFE, "x.idx: bad IDX magic"),
    # ---- your own CSV table
    ("csv-missing", load_dataset, ("{tmp}/nope.csv",), {}, {}, FNF, "data file not found: "),
    ("csv-is-dir", load_dataset, ("{tmp}/d.csv",), {}, {"d.csv/x": "x"}, FNF, "d.csv is not a file"),
    ("csv-empty", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": ""}, DFE, "t.csv: file is empty"),
    ("csv-latin1", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": LATIN1}, DFE,
     "t.csv: not UTF-8 text: byte 0xe9 at offset 14"),
    ("csv-no-header", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "1,2,0\n3,4,1\n"}, DFE,
     "t.csv: line 1 ('1,2,0') holds numbers, not column names"),
    ("csv-first-line-empty", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "\nf0,label\n1,a\n"}, DFE,
     "t.csv: line 1 is empty"),
    ("csv-header-only", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n"}, DFE, "t.csv: no data rows"),
    ("csv-no-label", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,class\n1,a\n2,b\n"}, DFE,
     "t.csv: no label column 'label'; columns are ['f0', 'class']"),
    ("csv-label_column-absent", load_dataset, ("{tmp}/t.csv",), {"label_column": "activity"}, {"t.csv": CSV_OK},
     DFE, "no label column 'activity'"),
    ("csv-label_column-int", load_dataset, ("{tmp}/t.csv",), {"label_column": 5}, {"t.csv": CSV_OK}, VE,
     "label_column must be a column name"),
    ("csv-non-numeric", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,f1,label\n1,2,a\n3,abc,b\n"}, DFE,
     "t.csv: column 'f1', row 1 (line 3): non-numeric value 'abc'"),
    ("csv-empty-cell", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,f1,label\n,2,a\n3,4,b\n"}, DFE,
     "column 'f0', row 0 (line 2): missing value"),
    ("csv-nan", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1,a\nnan,b\n"}, DFE,
     "column 'f0', row 1 (line 3): missing value (empty cell or NaN)"),
    ("csv-inf", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1,a\ninf,b\n"}, DFE,
     "column 'f0', row 1 (line 3): infinite value"),
    ("csv-float32-overflow", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1e39,a\n1,b\n"}, DFE,
     "row 0 (line 2): 1e+39 does not fit float32"),
    ("csv-bool-feature", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\nTrue,a\nFalse,b\n"}, DFE,
     "column 'f0', row 0 (line 2): holds True/False values"),
    ("csv-one-class", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1,a\n2,a\n"}, DFE,
     "label column 'label' holds 1 distinct class ('a'); class-incremental learning needs at least 2"),
    ("csv-missing-label", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1,a\n2,\n3,b\n"}, DFE,
     "column 'label', row 1 (line 3): missing value"),
    ("csv-fractional-label", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1,1\n2,1.5\n"}, DFE,
     "column 'label', row 1 (line 3): 1.5 is not an integer"),
    ("csv-missing-subject", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label,subject\n1,a,\n2,b,1\n"}, DFE,
     "column 'subject', row 0 (line 2): missing value"),
    ("csv-bad-split", load_dataset, ("{tmp}/t.csv",), {},
     {"t.csv": "f0,label,split\n1,a,train\n2,b,validation\n"}, DFE,
     "column 'split', row 1 (line 3): split value 'validation' is not 'train' or 'test'"),
    ("csv-split-only-train", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label,split\n1,a,train\n2,b,train\n"},
     DFE, "split column 'split' has no 'test' row"),
    ("csv-class-without-train", load_dataset, ("{tmp}/t.csv",), {},
     {"t.csv": "f0,label,split\n1,a,train\n2,b,test\n"}, DFE, "class(es) ['b'] have no 'train' row"),
    ("csv-duplicate-column", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,f0,label\n1,2,a\n3,4,b\n"}, DFE,
     "t.csv: duplicate column name(s) ['f0']"),
    ("csv-unnamed-column", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,,label\n1,2,a\n3,4,b\n"}, DFE,
     "column 2 has no name"),
    ("csv-ragged-row", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "f0,label\n1,a\n2,b,9\n"}, DFE,
     "t.csv: cannot parse as CSV (Error tokenizing data. C error: Expected 2 fields in line 3, saw 3)"),
    ("csv-no-features", load_dataset, ("{tmp}/t.csv",), {}, {"t.csv": "label,subject\na,1\nb,2\n"}, DFE,
     "t.csv: no feature columns"),
    ("csv-feature-absent", load_dataset, ("{tmp}/t.csv",), {"feature_columns": ["f0", "zz"]}, {"t.csv": CSV_OK}, DFE,
     "feature column(s) ['zz'] not found"),
    ("csv-feature-str", load_dataset, ("{tmp}/t.csv",), {"feature_columns": "f0"}, {"t.csv": CSV_OK}, VE,
     "feature_columns must be a list of column names"),
    ("csv-feature-is-label", load_dataset, ("{tmp}/t.csv",), {"feature_columns": ["f0", "label"]}, {"t.csv": CSV_OK},
     VE, "column(s) ['label'] cannot be both a feature and the label/subject/split"),
    ("csv-feature-empty", load_dataset, ("{tmp}/t.csv",), {"feature_columns": []}, {"t.csv": CSV_OK}, VE,
     "feature_columns must name at least one column"),
    ("csv-subject_column-absent", load_dataset, ("{tmp}/t.csv",), {"subject_column": "person"}, {"t.csv": CSV_OK},
     DFE, "no subject column 'person'"),
    ("csv-split_column-absent", load_dataset, ("{tmp}/t.csv",), {"split_column": "fold"}, {"t.csv": CSV_OK}, DFE,
     "no split column 'fold'"),
    ("csv-class_names-length", load_dataset, ("{tmp}/t.csv",), {"class_names": ["x"]}, {"t.csv": CSV_OK}, DFE,
     "class_names has 1 names, the labels have 2 classes"),
    ("csv-class_names-mapping", load_dataset, ("{tmp}/t.csv",), {"class_names": {"a": "A"}}, {"t.csv": CSV_OK}, DFE,
     "class_names has no name for label(s) ['b']"),
    ("csv-unknown-param", load_dataset, ("{tmp}/t.csv",), {"window": 3}, {"t.csv": CSV_OK}, TE,
     "unknown parameter(s) ['window'] for a csv file"),
    ("csv-cache-not-bool", load_dataset, ("{tmp}/t.csv",), {"cache": 1}, {"t.csv": CSV_OK}, VE,
     "cache must be True or False"),
    ("csv-relative-to-data_dir", load_dataset, ("sub/t.csv", "{tmp}"), {}, {}, FNF, "sub/t.csv"),
    # ---- Parquet (without pyarrow: an ImportError saying to install it; tested in test_datasets_byo)
    ("parquet-corrupt", load_dataset, ("{tmp}/t.parquet",), {}, {"t.parquet": b"PAR1 junk"},
     (DFE, ImportError), "t.parquet"),
    # ---- your own NPZ
    ("npz-garbage", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": b"not a zip at all"}, DFE,
     "t.npz: not an .npz file (an .npz is a zip archive"),
    ("npz-pickle", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": EVIL_PICKLE}, DFE, "t.npz: not an .npz file"),
    ("npz-truncated-zip", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": lambda: npz(X=X4, y=Y4)[:200]}, DFE,
     "t.npz: not a readable .npz file (BadZipFile"),
    ("npz-single-array", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": lambda: _npy(np.zeros(3))}, DFE,
     "t.npz: holds a single array, not an .npz archive"),
    ("npz-corrupt-member", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": lambda: _flip(npz(X=X4 + 1, y=Y4), 120)},
     DFE, "t.npz: array 'X' is corrupt (BadZipFile: Bad CRC-32"),
    ("npz-missing-y", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=X4)}, DFE, "t.npz: missing key 'y'"),
    ("npz-unknown-key", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=X4, y=Y4, labels=Y4)}, DFE,
     "t.npz: unknown key(s) ['labels']"),
    ("npz-object-y", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=X4, y=np.array([1, "a", 2, 3], object))},
     DFE, "t.npz: array 'y' cannot be read without unpickling"),
    ("npz-rank-3", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=np.zeros((4, 2, 2)), y=Y4)}, DFE,
     "t.npz: X has rank 3 (shape (4, 2, 2)); expected rank 2"),
    ("npz-nan", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=np.array([[0, 0], [0, np.nan]] * 2), y=Y4)},
     DFE, "t.npz: X[1, 1]: NaN"),
    ("npz-image-inf", load_dataset, ("{tmp}/t.npz",), {},
     {"t.npz": npz(X=np.where(np.arange(16).reshape(4, 1, 2, 2) == 5, np.inf, 0.0), y=Y4)}, DFE,
     "t.npz: X[1, 0, 0, 1]: infinite"),
    ("npz-X-strings", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=np.array([["a"]] * 4), y=Y4)}, DFE,
     "t.npz: X must hold numbers"),
    ("npz-no-rows", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=np.zeros((0, 2)), y=np.zeros(0, int))}, DFE,
     "t.npz: no data rows"),
    ("npz-y-length", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=X4, y=Y4[:3])}, DFE,
     "label column 'y' has 3 values, X has 4 rows"),
    ("npz-y-bool", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=X4, y=Y4.astype(bool))}, DFE,
     "t.npz: y[0]: labels must be integers or strings, got True/False"),
    ("npz-bad-split", load_dataset, ("{tmp}/t.npz",), {},
     {"t.npz": npz(X=X4, y=Y4, split=np.array(["train"] * 3 + ["dev"]))},
     DFE, "t.npz: split[3]: split value 'dev' is not 'train' or 'test'"),
    ("npz-split-ints", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": npz(X=X4, y=Y4, split=np.array([0, 0, 1, 1]))},
     DFE, "split values must be 'train' or 'test', got int64"),
    ("npz-feature_names-length", load_dataset, ("{tmp}/t.npz",), {},
     {"t.npz": npz(X=X4, y=Y4, feature_names=np.array(["a"]))}, DFE, "1 feature names for X of shape (4, 2)"),
    ("npz-feature_names-images", load_dataset, ("{tmp}/t.npz",), {},
     {"t.npz": npz(X=np.zeros((4, 1, 2, 2)), y=Y4, feature_names=np.array(["a"]))}, DFE,
     "feature_names is only for 2-D X"),
    ("npz-class_names-ints", load_dataset, ("{tmp}/t.npz",), {},
     {"t.npz": npz(X=X4, y=Y4, class_names=np.array([1, 2]))},
     DFE, "class_names must be a 1-D string array"),
    ("npz-empty-file", load_dataset, ("{tmp}/t.npz",), {}, {"t.npz": b""}, DFE, "t.npz: file is empty"),
    ("npz-unknown-param", load_dataset, ("{tmp}/t.npz",), {"label_column": "y"}, {"t.npz": npz(X=X4, y=Y4)}, TE,
     "unknown parameter(s) ['label_column'] for a npz file"),
    # ---- from_arrays
    ("arrays-ragged", from_arrays, ([[1, 2], [3]], [0, 1]), {}, {}, VE, "from_arrays: X must be an array of numbers"),
    ("arrays-y-2d", from_arrays, (X4, Y4.reshape(2, 2)), {}, {}, DFE, "label column 'y' must be 1-D"),
    ("arrays-name", from_arrays, (X4, Y4), {"name": ""}, {}, VE, "from_arrays: name must be a non-empty str"),
    ("arrays-y-mixed", from_arrays, (X4, np.array([0, "a", 1, "b"], dtype=object)), {}, {}, DFE,
     "from_arrays: y[1]: 'a' (str): labels must be all integers or all strings"),
    ("arrays-y-none", from_arrays, (X4, np.array([0, None, 1, 1], dtype=object)), {}, {}, DFE,
     "from_arrays: y[1]: missing value"),
    ("arrays-subject-length", from_arrays, (X4, Y4), {"subject": [1, 2]}, {}, DFE,
     "subject column 'subject' has 2 values, X has 4 rows"),
    ("arrays-class-names-dup", from_arrays, (X4, Y4), {"class_names": ["a", "a"]}, {}, DFE,
     "class names must be distinct"),
    ("arrays-inf", from_arrays, (np.array([[np.inf, 0]] * 4), Y4), {}, {}, DFE, "from_arrays: X[0, 0]: infinite"),
    ("arrays-X-rank-1", from_arrays, (np.zeros(4), Y4), {}, {}, DFE, "X has rank 1"),
    ("arrays-complex-y", from_arrays, (X4, Y4 + 0j), {}, {}, DFE,
     "labels must be integers or strings, got dtype complex128"),
    # ---- identity
    ("identity-not-dataset", dataset_identity, ("x",), {}, {}, VE, "expected an intsim.datasets.Dataset, got str"),
    ("identity-recorded-bad", check_identity, ({},), {}, {}, VE, "recorded must be a dict made by dataset_identity()"),
    ("identity-file-gone", check_identity, (_IDENT,), {}, {}, DatasetIdentityError,
     "source file /nonexistent/x.csv no longer exists"),
    # ---- scenario and scaling
    ("scenario-init_cls-str", Scenario, (X4, Y4), {"init_cls": "a"}, {}, VE,
     "Scenario: init_cls must be an int, got 'a'"),
    ("scenario-seed-neg", Scenario, (X4, Y4), {"seed": -1}, {}, VE, "Scenario: seed must be an int >= 0, got -1"),
    ("scenario-split", Scenario, (X4, Y4), {"split": "official"}, {}, VE, "split='official' needs is_test"),
    ("scenario-empty", Scenario, (np.zeros((0, 2)), np.zeros(0, int)), {}, {}, VE, "y: the data set is empty"),
    ("minmax-nan", fit_minmax, (np.array([[np.nan]]),), {}, {}, VE, "fit_minmax: X_train contains NaN or inf"),
]


def _npy(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def _flip(raw: bytes, offset: int) -> bytes:
    b = bytearray(raw)
    b[offset] ^= 0xFF
    return bytes(b)


def _fmt(v, tmp: Path):
    return v.replace("{tmp}", str(tmp)) if isinstance(v, str) else v


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch):
    _, fn, args, kwargs, files, exc, text = case
    monkeypatch.setenv("INTSIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("INTSIM_DATA", raising=False)
    for rel, content in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        content = content() if callable(content) else content
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    args = tuple(_fmt(a, tmp_path) for a in args)
    kwargs = {k: _fmt(v, tmp_path) for k, v in kwargs.items()}
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert text in msg, f"expected {text!r} in the message:\n{msg}"
    assert "Traceback" not in msg
    not_pwned()
