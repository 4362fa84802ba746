"""Data: the real files, their checksums, the splits and the errors users get."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from glimpse_env import data
from glimpse_env.data import DataIntegrityError, DataNotFoundError, load_raw, load_split

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
