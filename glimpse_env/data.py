"""MNIST and Fashion-MNIST: locating, downloading, verifying and loading the raw IDX files.

The data folder is chosen, in order, by an explicit ``data_dir`` argument, the
``GLIMPSE_DATA_DIR`` environment variable, or the default user cache folder
(``$XDG_CACHE_HOME/glimpse-mnist``, else ``~/.cache/glimpse-mnist``). It uses
torchvision's layout: ``<data_dir>/MNIST/raw/train-images-idx3-ubyte[.gz]`` and so on,
``FashionMNIST`` for Fashion-MNIST. The chosen folder is the only one looked in: a
``data_dir`` that lacks a file never falls back to another folder's copy.

The folder is treated as read-only: ``.gz`` files are decompressed in memory, never next
to themselves. Every file's decompressed content is checked against the sha256 digest
of the published dataset (:data:`RAW_SHA256`), so a truncated or corrupted copy fails
loudly with its path and both digests (:class:`DataIntegrityError`); a file or folder
that exists but cannot be read (permissions, a directory where a file should be, a file
where the data folder should be, a symbolic link loop) fails with :class:`DataReadError`,
saying which. Files that are missing are downloaded through torchvision into the data
folder when it is writable, else into the user cache (with a warning naming both
folders); a download that fails raises :class:`DataNotFoundError` and removes what it
created (never a file or folder that was there before).

Every problem with the data folder raises a :class:`DataError` (the base class of the
three), a one-line message saying what is wrong and how to fix it. It is both a
``ValueError`` and an ``OSError``, so ``except ValueError`` and ``except OSError``
handlers catch it too.

Splits:

* ``train``: the first 55,000 images of the official training set;
* ``val``: the last 5,000 images of the official training set (indices 55,000-59,999),
  a fixed hold-out that never changes (:func:`carve_val`, the rule an
  :class:`~glimpse_env.images.ImageDataset` given no ``val`` split is carved by too);
* ``test``: the official 10,000-image test set.

Each dataset is read and verified once per process; every environment shares the
same in-memory tensors.
"""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import os
import reprlib
import stat
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist")
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Number of training images held out, from the end of the official training set, as ``val``.
VAL_SIZE = 5_000

#: Number of images of the official training set, of which the last :data:`VAL_SIZE` are ``val``.
OFFICIAL_TRAIN_SIZE = 60_000

#: Number of images of each split (the same for both datasets; the checksums fix them).
SPLIT_SIZES: dict[str, int] = {"train": OFFICIAL_TRAIN_SIZE - VAL_SIZE, "val": VAL_SIZE, "test": 10_000}

#: torchvision's folder name for each dataset.
FOLDERS: dict[str, str] = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}

#: Class names, index = label.
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
}

_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: sha256 of each *decompressed* raw file, as published (the gzip wrappers differ between
#: mirrors, their content does not).
RAW_SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}


class DataError(ValueError, OSError):
    """A problem with the data folder or its files: the one exception to catch for them.

    A ``ValueError`` and an ``OSError`` both, so that handlers of either catch it; its
    message is one line. Raised as one of :class:`DataNotFoundError`,
    :class:`DataReadError`, :class:`DataIntegrityError`, or as itself for a ``data_dir``
    argument that names no folder at all (an empty string).
    """


class DataNotFoundError(DataError, FileNotFoundError):
    """The dataset files are not in the data folder and could not be downloaded."""


class DataReadError(DataError):
    """A dataset file or folder exists but cannot be read: permissions, a directory where a
    file should be, a file where the data folder should be, a symbolic link loop, or an I/O
    error. Its content is not in question."""


class DataIntegrityError(DataError):
    """A dataset file exists but its content is not the published dataset."""


class SplitData(NamedTuple):
    """One split of a dataset, in memory."""

    images: torch.Tensor
    """``(N, 28, 28)`` uint8 images (an :class:`~glimpse_env.images.ImageDataset`'s: ``(N, H, W)``,
    or ``(N, C, H, W)`` channels first)."""
    labels: torch.Tensor
    """``(N,)`` int64 class labels."""


class RawDataset(NamedTuple):
    """A whole dataset as published: the official training and test sets."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def default_cache_dir() -> Path:
    """The per-user folder used when neither ``data_dir`` nor ``GLIMPSE_DATA_DIR`` is set."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "glimpse-mnist"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: ``data_dir`` if given, else ``$GLIMPSE_DATA_DIR``, else the user cache.

    Raises:
        TypeError: ``data_dir`` is not a path (``str`` or ``os.PathLike``).
        DataError: ``data_dir`` is an empty string; :class:`DataReadError` when the chosen
            path cannot be resolved, or is (or lies inside) something that is not a folder.
    """
    if data_dir is not None:
        return _resolve(_as_path(data_dir), "data_dir", f"data_dir={os.fspath(data_dir)!r}")
    env = os.environ.get("GLIMPSE_DATA_DIR")
    if env:
        return _resolve(Path(env), "GLIMPSE_DATA_DIR", f"GLIMPSE_DATA_DIR={env!r}")
    return _resolve(default_cache_dir(), "data_dir (or GLIMPSE_DATA_DIR)", "the user cache folder")


def _as_path(data_dir: object) -> Path:
    """``data_dir`` as a ``Path``, or a ``TypeError`` (not a path) or :class:`DataError` (empty)."""
    expected = "data_dir must be a path (str or os.PathLike) to the data folder, or None"
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(
            f"{expected} ($GLIMPSE_DATA_DIR, else the user cache), got {reprlib.repr(data_dir)} of type "
            f"{type(data_dir).__name__}"
        )
    try:
        path = os.fspath(data_dir)
    except TypeError as exc:
        raise TypeError(f"{expected}, got {reprlib.repr(data_dir)}: {exc}") from None
    if not isinstance(path, str):
        raise TypeError(f"{expected}, got {reprlib.repr(data_dir)}, a path of {type(path).__name__}")
    if not path:
        raise DataError(f"{expected}, got an empty string; pass the data folder (or None)")
    return Path(path)


def _resolve(path: Path, variable: str, what: str) -> Path:
    """``path`` made absolute, or a :class:`DataReadError` naming ``what`` (e.g.
    ``GLIMPSE_DATA_DIR='/x'``) when it is, or lies inside, something that is not a folder."""
    try:
        resolved = path.expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError on a symlink loop
        raise DataReadError(f"{what}: {path} cannot be resolved to a folder: {exc}") from exc
    probe = resolved  # the nearest part of the path that exists must be a folder
    while not os.path.lexists(probe) and probe.parent != probe:
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        where = "is a file" if probe == resolved else f"lies inside {probe}, which is a file"
        raise DataReadError(
            f"{what}: {resolved} {where}, not a folder; point {variable} at the data folder (the folder "
            f"that holds MNIST/ and FashionMNIST/, or where they should be downloaded)"
        )
    return resolved


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def _find_raw(root: Path, dataset: str, name: str) -> Path | None:
    """The file of ``name`` (plain, else ``.gz``), ``None`` if neither exists.

    Raises :class:`DataReadError` for something there that cannot be read as a file.
    """
    raw = root / FOLDERS[dataset] / "raw"
    for candidate in (raw / name, raw / f"{name}.gz"):
        if _is_data_file(candidate):
            return candidate
    return None


_HOW_TO_FIX = "fix it, or point data_dir (or GLIMPSE_DATA_DIR) at a folder with readable copies"


def _is_data_file(path: Path) -> bool:
    """True for a regular file (or a link to one), False when nothing is there; else an error."""
    try:
        mode = os.stat(path).st_mode  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(path):
            raise DataReadError(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; {_HOW_TO_FIX}"
            ) from None
        return False
    except NotADirectoryError:
        return False  # a file where a folder of the layout should be: nothing to find there
    except PermissionError as exc:
        raise DataReadError(
            f"cannot look into the folder {path.parent}: permission denied ({exc.strerror}); the "
            f"folder, or one above it, is not searchable by this user: make it readable "
            f"(chmod a+rx), or point data_dir at a readable copy"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataReadError(f"{path} is a symbolic link loop; {_HOW_TO_FIX}") from exc
        raise DataReadError(f"cannot look at {path}: {exc.strerror or exc}; {_HOW_TO_FIX}") from exc
    if stat.S_ISDIR(mode):
        raise DataReadError(f"{path} is a directory, not a data file; {_HOW_TO_FIX}")
    if not stat.S_ISREG(mode):
        raise DataReadError(f"{path} is not a regular file (a device, socket or pipe); {_HOW_TO_FIX}")
    return True


def _missing(root: Path, dataset: str) -> list[str]:
    return [name for name in _FILES if _find_raw(root, dataset, name) is None]


def _download(root: Path, dataset: str) -> None:
    """Download ``dataset`` into ``root`` in torchvision's layout (raises on failure)."""
    from torchvision import datasets

    cls = datasets.MNIST if dataset == "mnist" else datasets.FashionMNIST
    root.mkdir(parents=True, exist_ok=True)
    cls(root=str(root), train=True, download=True)


class _Snapshot(NamedTuple):
    """What existed, before a download, of the folders a download into ``root`` writes to."""

    root: Path
    new_top: Path | None
    """The outermost folder of ``root``'s path that did not exist (``root`` itself or one
    above it), ``None`` when ``root`` existed."""
    existing: frozenset[Path]
    """Every path under ``root/<dataset folder>`` that existed (the folder included)."""


def _snapshot(root: Path, dataset: str) -> _Snapshot:
    new_top = None
    probe = root
    while not os.path.lexists(probe) and probe.parent != probe:
        new_top, probe = probe, probe.parent
    folder = root / FOLDERS[dataset]
    existing: set[Path] = set()
    if os.path.lexists(folder):
        existing.add(folder)
        for parent, dirs, files in os.walk(folder):
            existing.update(Path(parent) / name for name in (*dirs, *files))
    return _Snapshot(root, new_top, frozenset(existing))


def _remove_new(before: _Snapshot, dataset: str) -> None:
    """Remove what a failed download created since ``before``: the files and folders that
    were not there (a partial download, an empty ``MNIST/raw``), never one that was.
    Best effort: a path that cannot be removed stays, and the download's error is the one raised."""
    folder = before.root / FOLDERS[dataset]
    paths: list[Path] = []
    if os.path.lexists(folder):
        for parent, dirs, files in os.walk(folder, topdown=False):  # contents before their folder
            paths.extend(Path(parent) / name for name in (*files, *dirs))
        paths.append(folder)
    chain = []  # root and the folders above it that the download created, innermost first
    if before.new_top is not None:
        probe = before.root
        while True:
            chain.append(probe)
            if probe == before.new_top or probe.parent == probe:
                break
            probe = probe.parent
    for path in paths:
        if path in before.existing:
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()  # only empty: what it held was removed first (or was there before)
            else:
                path.unlink()
        except OSError:
            pass
    for path in chain:
        try:
            path.rmdir()
        except OSError:
            break  # not empty (something else is in it) or not removable: leave it and those above


def _is_writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _locate(root: Path, dataset: str) -> Path:
    """The folder that holds all four files of ``dataset``: ``root``, the only folder looked
    in, or the folder the missing files were downloaded into."""
    missing = _missing(root, dataset)
    if not missing:
        return root
    folder = FOLDERS[dataset]
    cache = default_cache_dir().resolve()
    target = root if _is_writable(root) else cache
    where = (
        f"into {target}"
        if target == root
        else f"into the user cache {target}, since the data folder {root} is not writable"
    )
    absent = "" if os.path.lexists(root) else f" (the folder {root} does not exist)"
    before = _snapshot(target, dataset)
    try:
        _download(target, dataset)
    except Exception as exc:
        _remove_new(before, dataset)
        expected = ", ".join(f"{n}[.gz]" for n in missing)
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line: torchvision's has several
        raise DataNotFoundError(
            f"{dataset} data not found in the data folder {root / folder / 'raw'}{absent} (the only folder "
            f"looked in); missing files: {expected}. Downloading them through torchvision {where} "
            f"failed ({reason}). To fix: copy the four raw IDX files (gzipped or "
            f"not) into <data_dir>/{folder}/raw/ and pass data_dir=<data_dir> or set GLIMPSE_DATA_DIR, "
            f"or run once with network access."
        ) from exc
    if target != root:
        warnings.warn(
            f"the data folder {root} lacks {dataset} files {missing} and is not writable: downloaded "
            f"{dataset} into the user cache {target} and loaded it from there",
            stacklevel=2,
        )
    still_missing = _missing(target, dataset)
    if still_missing:
        _remove_new(before, dataset)
        raise DataNotFoundError(
            f"torchvision's download into {target} did not produce {still_missing}; "
            f"place the raw IDX files in {target / FOLDERS[dataset] / 'raw'} by hand."
        )
    return target


def _read_verified(path: Path, dataset: str, name: str) -> bytes:
    try:
        blob = path.read_bytes()
    except PermissionError as exc:
        raise DataReadError(
            f"cannot read {path}: permission denied ({exc.strerror}). The file exists but this user "
            f"may not read it: make it readable (chmod a+r), or point data_dir at a readable copy."
        ) from exc
    except IsADirectoryError as exc:
        raise DataReadError(f"{path} is a directory, not a data file; {_HOW_TO_FIX}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataReadError(f"{path} is a symbolic link loop; {_HOW_TO_FIX}") from exc
        raise DataReadError(
            f"cannot read {path}: {type(exc).__name__}: {exc}. The file exists but reading it failed "
            f"(the disk or file system, not its content); {_HOW_TO_FIX}"
        ) from exc
    try:
        content = gzip.decompress(blob) if path.suffix == ".gz" else blob
    except (OSError, EOFError, zlib.error) as exc:
        raise DataIntegrityError(
            f"cannot decompress {path}: {type(exc).__name__}: {exc}. The file is truncated or corrupted; "
            f"delete it and download it again (or copy a good one)."
        ) from exc
    expected = RAW_SHA256[dataset][name]
    actual = hashlib.sha256(content).hexdigest()
    if actual != expected:
        raise DataIntegrityError(
            f"checksum mismatch for {path}: the decompressed content has sha256 {actual}, "
            f"expected {expected} (the published {dataset} file {name}). The file is corrupted, "
            f"truncated or another dataset's; delete it and download it again (or copy a good one)."
        )
    return content


def parse_idx(content: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX file (unsigned-byte data only, as MNIST uses) into a numpy array."""
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] != 0x08:
        raise DataIntegrityError(f"{source} is not an unsigned-byte IDX file")
    ndim = content[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(content) != header + int(np.prod(shape)):
        raise DataIntegrityError(f"{source}: size does not match its IDX header {shape}")
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)


@functools.cache
def _load_raw(root: Path, dataset: str) -> RawDataset:
    folder = _locate(root, dataset)
    arrays = []
    for name in _FILES:
        path = _find_raw(folder, dataset, name)
        assert path is not None
        arrays.append(parse_idx(_read_verified(path, dataset, name), source=str(path)))
    train_x, train_y, test_x, test_y = arrays
    return RawDataset(
        train_images=torch.from_numpy(train_x.copy()),
        train_labels=torch.from_numpy(train_y.astype(np.int64)),
        test_images=torch.from_numpy(test_x.copy()),
        test_labels=torch.from_numpy(test_y.astype(np.int64)),
    )


def load_raw(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> RawDataset:
    """The verified dataset, read once per process and per data folder."""
    _check_dataset(dataset)
    return _load_raw(resolve_data_dir(data_dir), dataset)


def load_split(dataset: str, split: str, data_dir: str | os.PathLike[str] | None = None) -> SplitData:
    """The images and labels of one split (``train``, ``val`` or ``test``), as CPU tensors.

    The tensors are views of the process-wide cache: do not modify them in place.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    raw = load_raw(dataset, data_dir)
    if split == "test":
        return SplitData(raw.test_images, raw.test_labels)
    train, val = carve_val(raw.train_images, raw.train_labels)
    return train if split == "train" else val


def default_val_size(n_train: int) -> int:
    """How many of ``n_train`` training images :func:`carve_val` holds out as ``val`` by default:
    the share MNIST holds out (:data:`VAL_SIZE` of :data:`OFFICIAL_TRAIN_SIZE`, one in twelve,
    rounded down), at least one; 5,000 for MNIST's 60,000."""
    return max(1, n_train * VAL_SIZE // OFFICIAL_TRAIN_SIZE)


def carve_val(
    images: torch.Tensor, labels: torch.Tensor, val_size: int | None = None
) -> tuple[SplitData, SplitData]:
    """``(train, val)`` of a training set: ``val`` is its last ``val_size`` images (default
    :func:`default_val_size`), a fixed hold-out; ``train`` the others, in order. Views, not copies.

    The one rule of the ``val`` split, for MNIST and Fashion-MNIST (:func:`load_split`) and for
    a :class:`~glimpse_env.images.ImageDataset` given no ``val`` split of its own.
    """
    total = int(images.shape[0])
    held_out = default_val_size(total) if val_size is None else val_size
    if not 0 < held_out < total:
        raise ValueError(
            f"cannot hold out {held_out} of {total} training images as the val split: at least one "
            f"image must stay in train and one go to val"
        )
    cut = total - held_out
    return SplitData(images[:cut], labels[:cut]), SplitData(images[cut:], labels[cut:])


@functools.cache
def _split_on_device(root: Path, dataset: str, split: str, device: str) -> SplitData:
    data = load_split(dataset, split, root)
    return SplitData(data.images.to(device), data.labels.to(device))


def load_split_to(
    dataset: str,
    split: str,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
) -> SplitData:
    """:func:`load_split`, on ``device``, copied there once per process."""
    _check_dataset(dataset)
    return _split_on_device(resolve_data_dir(data_dir), dataset, split, str(torch.device(device)))
