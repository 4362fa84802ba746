"""Data: the real files, their checksums, the splits and the errors users get."""

from __future__ import annotations

import errno
import gzip
import os
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from glimpse_env import data
from glimpse_env.data import DataIntegrityError, DataNotFoundError, DataReadError, load_raw, load_split

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_is_the_real_dataset():
    raw = load_raw("mnist")
    assert raw.train_images.shape == (60_000, 28, 28)
    assert np.bincount(raw.train_labels.numpy()).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(raw.test_labels.numpy()).tolist() == MNIST_TEST_COUNTS


def test_fashion_mnist_is_the_real_dataset():
    raw = load_raw("fashion_mnist")
    assert np.bincount(raw.train_labels.numpy()).tolist() == [6000] * 10
    assert np.bincount(raw.test_labels.numpy()).tolist() == [1000] * 10


def test_splits_are_a_fixed_partition():
    raw = load_raw("mnist")
    train, val, test = (load_split("mnist", s) for s in ("train", "val", "test"))
    assert (len(train.labels), len(val.labels), len(test.labels)) == (55_000, 5_000, 10_000)
    assert np.array_equal(val.images.numpy(), raw.train_images[55_000:].numpy())
    assert np.array_equal(train.images.numpy(), raw.train_images[:55_000].numpy())


def test_dataset_is_loaded_once_per_process():
    assert load_raw("mnist") is load_raw("mnist")
    assert load_split("mnist", "test").images.data_ptr() == load_raw("mnist").test_images.data_ptr()


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_raw("cifar")
    with pytest.raises(ValueError, match="unknown split"):
        load_split("mnist", "validation")


def test_data_dir_resolution_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GLIMPSE_DATA_DIR", str(tmp_path / "env"))
    assert data.resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert data.resolve_data_dir() == (tmp_path / "env").resolve()
    monkeypatch.delenv("GLIMPSE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.resolve_data_dir() == (tmp_path / "cache" / "glimpse-mnist").resolve()


def _copy_mnist(source: Path, target: Path) -> Path:
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (source / "MNIST" / "raw").iterdir():
        shutil.copy(f, raw / f.name)
    return raw


def _no_download(monkeypatch, tmp_path):
    """No network and an empty user cache."""

    def offline(root, dataset):
        raise URLError("no network")

    monkeypatch.setattr(data, "_download", offline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))


def test_corrupted_file_names_path_and_checksums(data_dir, tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    raw = _copy_mnist(data_dir, tmp_path / "copy")
    labels = raw / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[100] = (content[100] + 1) % 10  # one label changed: still a valid IDX file
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataIntegrityError) as err:
        load_raw("mnist", tmp_path / "copy")
    message = str(err.value)
    assert str(labels) in message
    assert data.RAW_SHA256["mnist"]["t10k-labels-idx1-ubyte"] in message
    assert "checksum mismatch" in message


def test_truncated_file_is_reported(data_dir, tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    raw = _copy_mnist(data_dir, tmp_path / "copy")
    images = raw / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:50_000])
    with pytest.raises(DataIntegrityError, match="truncated or corrupted") as err:
        load_raw("mnist", tmp_path / "copy")
    assert str(images) in str(err.value)


def test_decompressed_files_are_accepted_and_folder_is_left_untouched(data_dir, tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    raw = _copy_mnist(data_dir, tmp_path / "copy")
    for gz in raw.glob("*.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in raw.iterdir())
    loaded = load_raw("mnist", tmp_path / "copy")
    assert np.array_equal(loaded.test_labels.numpy(), load_raw("mnist").test_labels.numpy())
    assert sorted((p.name, p.stat().st_mtime_ns) for p in raw.iterdir()) == before


def test_missing_data_without_network_says_where_it_looked(tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    empty = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError) as err:
        load_raw("fashion_mnist", empty)
    message = str(err.value)
    assert str(empty / "FashionMNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message
    assert "GLIMPSE_DATA_DIR" in message
    assert "no network" in message


def test_missing_files_are_downloaded_through_torchvision(data_dir, tmp_path, monkeypatch):
    """A download that writes torchvision's layout is found and verified."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    calls = []

    def fake_download(root, dataset):
        calls.append((root, dataset))
        _copy_mnist(data_dir, root)

    monkeypatch.setattr(data, "_download", fake_download)
    target = tmp_path / "fresh"
    loaded = load_raw("mnist", target)
    assert calls == [(target.resolve(), "mnist")]
    assert loaded.test_labels.shape == (10_000,)


def test_split_sizes_are_the_loaded_ones():
    for dataset in data.DATASETS:
        for split, size in data.SPLIT_SIZES.items():
            assert len(load_split(dataset, split).labels) == size


def _full_cache(data_dir: Path, tmp_path: Path, monkeypatch) -> Path:
    """A user cache that holds all of MNIST, and no network."""
    cache_home = tmp_path / "cache-home"
    _copy_mnist(data_dir, cache_home / "glimpse-mnist")
    _no_download(monkeypatch, tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    return cache_home / "glimpse-mnist"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_data_folder_missing_a_file_never_falls_back_to_the_cache(data_dir, tmp_path, monkeypatch, how):
    _full_cache(data_dir, tmp_path, monkeypatch)
    raw = _copy_mnist(data_dir, tmp_path / "partial")
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("GLIMPSE_DATA_DIR", str(tmp_path / "partial"))
    with pytest.raises(DataNotFoundError) as err:
        load_raw("mnist", tmp_path / "partial" if how == "argument" else None)
    message = str(err.value)
    assert f"{raw} (the only folder looked in)" in message
    assert "missing files: t10k-labels-idx1-ubyte[.gz]" in message
    assert f"into {(tmp_path / 'partial').resolve()} failed" in message
    assert "cache-home" not in message


def test_missing_files_are_downloaded_into_the_given_folder(data_dir, tmp_path, monkeypatch):
    _full_cache(data_dir, tmp_path, monkeypatch)
    calls = []

    def fake_download(root, dataset):
        calls.append(root)
        shutil.copy(data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", root / "MNIST" / "raw")

    monkeypatch.setattr(data, "_download", fake_download)
    raw = _copy_mnist(data_dir, tmp_path / "partial")
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    load_raw("mnist", tmp_path / "partial")
    assert calls == [(tmp_path / "partial").resolve()]


def test_a_read_only_data_folder_downloads_into_the_cache_and_says_so(data_dir, tmp_path, monkeypatch):
    cache = tmp_path / "cache-home" / "glimpse-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    monkeypatch.setattr(data, "_is_writable", lambda path: False)  # chmod does not bind root
    monkeypatch.setattr(data, "_download", lambda root, dataset: _copy_mnist(data_dir, root))
    raw = _copy_mnist(data_dir, tmp_path / "read-only")
    (raw / "train-images-idx3-ubyte.gz").unlink()
    with pytest.warns(UserWarning, match=r"is not writable: downloaded mnist into the user cache"):
        loaded = load_raw("mnist", tmp_path / "read-only")
    assert loaded.train_images.shape == (60_000, 28, 28)
    assert (cache / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()

    def offline(root, dataset):
        raise URLError("offline")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DataNotFoundError) as err:
        load_raw("mnist", tmp_path / "empty-read-only")
    assert f"into the user cache {cache.resolve()}, since the data folder" in str(err.value)
    assert "is not writable failed (URLError" in str(err.value)


def _provoke(raw: Path, kind: str) -> Path:
    """Make the test-labels file of ``raw`` unreadable in the way ``kind`` says; its path."""
    target = raw / "t10k-labels-idx1-ubyte.gz"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    elif kind == "loop":
        target.symlink_to(target.name)
    elif kind == "dangling":
        target.symlink_to("no-such-file")
    return target


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("directory", "is a directory, not a data file"),
        ("loop", "is a symbolic link loop"),
        ("dangling", "is a symbolic link to no-such-file, which does not exist"),
    ],
)
def test_a_data_file_that_cannot_be_a_file_says_what_it_is(data_dir, tmp_path, monkeypatch, kind, message):
    _no_download(monkeypatch, tmp_path)
    path = _provoke(_copy_mnist(data_dir, tmp_path / "copy"), kind)
    with pytest.raises(DataReadError, match=message) as err:
        load_raw("mnist", tmp_path / "copy")
    assert str(path) in str(err.value)
    assert "corrupted" not in str(err.value)


def test_a_data_folder_that_is_a_symlink_loop(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop.name)
    with pytest.raises(DataReadError, match="cannot be resolved to a folder"):
        load_raw("mnist", loop)


def test_an_unreadable_file_says_permission_denied(data_dir, tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    raw = _copy_mnist(data_dir, tmp_path / "copy")
    target = raw / "t10k-images-idx3-ubyte.gz"
    target.chmod(0)
    if os.access(target, os.R_OK):  # root reads it anyway: make the read itself fail
        real = Path.read_bytes

        def denied(self):
            if self == target:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataReadError, match=r"cannot read .*: permission denied") as err:
        load_raw("mnist", tmp_path / "copy")
    message = str(err.value)
    assert str(target) in message and "chmod a+r" in message
    assert "corrupted" not in message and "delete" not in message


class _NoSearch:
    """``os`` for the data module, as if folder ``denied`` had no search permission."""

    def __init__(self, denied: Path) -> None:
        self.denied = str(denied)

    def stat(self, path, *args, **kwargs):
        if str(path).startswith(self.denied + os.sep):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return os.stat(path, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(os, name)


def test_an_unreadable_folder_says_permission_denied(data_dir, tmp_path, monkeypatch):
    _no_download(monkeypatch, tmp_path)
    raw = _copy_mnist(data_dir, tmp_path / "copy")
    raw.chmod(0)
    try:
        try:
            os.stat(raw / "t10k-images-idx3-ubyte.gz")
            monkeypatch.setattr(data, "os", _NoSearch(raw))  # root searches it anyway
        except PermissionError:
            pass
        with pytest.raises(DataReadError, match=r"cannot look into the folder .*: permission denied") as err:
            load_raw("mnist", tmp_path / "copy")
        assert str(raw) in str(err.value)
    finally:
        raw.chmod(0o755)
