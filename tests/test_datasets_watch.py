"""The watch loader never unpickles a user-supplied file: crafted payloads are refused unexecuted."""
from __future__ import annotations

import importlib.util
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from intsim.datasets import DataFormatError, load_dataset, load_watch, write_watch_npz
from intsim.datasets.watch import WATCH_RELEASE_SHA256, read_watch, watch_file

HAS_SEGLEARN = importlib.util.find_spec("seglearn") is not None


class Payload:
    """Unpickling this creates ``target`` (what an attacker's file would do)."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def write_pickle_npy(path: Path, target: Path) -> Path:
    """A .npy whose object payload runs Path.touch(target) when loaded with allow_pickle=True."""
    np.save(path, np.array(Payload(target), dtype=object), allow_pickle=True)
    return path


def test_adversarial_npy_in_data_dir_is_not_executed(tmp_path):
    target = tmp_path / "pwned"
    bad = write_pickle_npy(tmp_path / "watch_dataset.npy", target)
    # sanity: the payload works when unpickled the unsafe way
    np.load(bad, allow_pickle=True)
    assert target.exists()
    target.unlink()
    for call in (lambda: load_dataset("watch", tmp_path, cache=False),
                 lambda: load_dataset("watch", tmp_path, cache_dir=tmp_path / "cache"),
                 lambda: load_watch(path=bad), lambda: read_watch(bad)):
        with pytest.raises(DataFormatError, match=r"watch_dataset\.npy.*not seglearn 1\.2\.5's"):
            call()
        assert not target.exists()


def test_adversarial_npz_is_not_executed(tmp_path):
    target = tmp_path / "pwned"
    buf = io.BytesIO()
    np.save(buf, np.array(Payload(target), dtype=object), allow_pickle=True)
    bad = tmp_path / "watch_dataset.npz"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("X.npy", buf.getvalue())
        for k in ("lengths", "y", "subject", "y_labels"):
            b = io.BytesIO()
            np.save(b, np.zeros(1, dtype=np.int64))
            z.writestr(f"{k}.npy", b.getvalue())
    with pytest.raises(DataFormatError, match=r"watch_dataset\.npz.*object array"):
        load_dataset("watch", tmp_path, cache=False)
    assert not target.exists()


def test_raw_pickle_file_named_npy_is_refused(tmp_path):
    target = tmp_path / "pwned"
    bad = tmp_path / "watch_dataset.npy"
    bad.write_bytes(pickle.dumps(Payload(target)))
    with pytest.raises(DataFormatError, match=r"watch_dataset\.npy"):
        load_dataset("watch", tmp_path, cache=False)
    assert not target.exists()


def test_npz_takes_precedence_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    recs = [rng.normal(size=(300, 6)), rng.normal(size=(200, 6))]
    write_watch_npz(tmp_path / "watch_dataset.npz", recs, y=[1, 0], subject=[3, 4], y_labels=["a", "b"])
    write_pickle_npy(tmp_path / "watch_dataset.npy", tmp_path / "pwned")  # ignored: the .npz wins
    ds = load_dataset("watch", tmp_path, cache=False)
    assert ds.y.tolist() == [1, 1, 1, 0, 0] and ds.subject.tolist() == [3, 3, 3, 4, 4]
    assert ds.meta["layout"] == "watch_npz" and not (tmp_path / "pwned").exists()


def test_watch_window_longer_than_every_recording(tmp_path):
    write_watch_npz(tmp_path / "watch_dataset.npz", [np.zeros((300, 6))] * 2, y=[0, 1], subject=[1, 2],
                    y_labels=["a", "b"])
    with pytest.raises(ValueError, match=r"window=1000000 is longer than every recording.*longest: 300"):
        load_dataset("watch", tmp_path, cache=False, window=10**6)


@pytest.mark.skipif(not HAS_SEGLEARN, reason="seglearn not installed (pip install -e '.[data]')")
def test_release_file_is_verified_and_readable(tmp_path):
    import hashlib
    path = watch_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == WATCH_RELEASE_SHA256
    d = read_watch(path)
    assert len(d["X"]) == 140 and d["y_labels"][0] == "PEN"
    # a byte-identical copy in a data_dir is the release too; one changed byte is not
    copy = tmp_path / "watch_dataset.npy"
    raw = bytearray(path.read_bytes())
    copy.write_bytes(bytes(raw))
    assert len(read_watch(copy)["X"]) == 140
    raw[-10] ^= 1
    copy.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match="not seglearn 1.2.5's"):
        read_watch(copy)
