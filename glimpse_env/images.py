"""Your own images as the dataset of a glimpse task: :class:`ImageDataset`.

Any labelled images, grayscale or RGB, of any size and any number of classes, with your
own train/val/test split, in place of MNIST::

    import gymnasium as gym
    import glimpse_env

    dataset = glimpse_env.ImageDataset(train=(x_train, y_train), test=(x_test, y_test))
    env = gym.make("GlimpseMNIST-Cluttered-v0", dataset=dataset, canvas_size=64)

The registered id gives the canvas, clutter and retina settings; the images, labels and
classes are the dataset's. ``dataset=`` is taken wherever a task is built: ``gym.make``,
``gym.make_vec``, :class:`~glimpse_env.env.GlimpseEnv`,
:class:`~glimpse_env.vector.GlimpseVectorEnv`, :class:`~glimpse_env.canvas_source.CanvasSource`
and :func:`~glimpse_env.evaluation.evaluate` (the field ``dataset`` of
:class:`~glimpse_env.task.TaskConfig`). :meth:`ImageDataset.from_torchvision` reads a
torchvision dataset's ``.data`` and ``.targets``.

Images are ``(N, H, W)`` uint8 (grayscale) or ``(N, H, W, 3)`` uint8 (RGB, channels last,
as numpy, PIL and torchvision's CIFAR hold them; ``(N, H, W, 1)`` is grayscale), numpy
arrays or torch tensors; every split has images of one size. They are stored channels
first, as the canvases are: ``(N, H, W)`` or ``(N, 3, H, W)``. RGB images give RGB
glimpses: every scale averages each channel, ``k * 3`` patches scale-major (see
:class:`~glimpse_env.retina.Retina`). Labels are integers ``0 .. num_classes - 1``, one
per image.

Bad input raises at construction with a one-line message naming the split, what is wrong
and the fix: ``TypeError`` for a wrong type or dtype, ``ValueError`` for a wrong shape or
value.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from glimpse_env.canvas import MAX_CANVAS_SIDE
from glimpse_env.data import SPLITS, SplitData, carve_val, default_val_size
from glimpse_env.validation import check_int

__all__ = ["MAX_CLASSES", "ImageDataset"]

#: Most classes a dataset may have (the action space is ``Discrete(num_classes)``, and the
#: scoring counts every class): far more than ImageNet-21k's.
MAX_CLASSES = 2**16

_CHANNELS = {1: "grayscale", 3: "RGB"}


def _fail(error: type[Exception], message: str) -> Exception:
    return error(f"ImageDataset: {message}")


def _as_tensor(value: object, what: str) -> torch.Tensor:
    """``value`` (a torch tensor, a numpy array, or what numpy makes an array of) as a CPU tensor
    of its own (a copy: later changes to the caller's array do not reach the dataset)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, (str, bytes)) or value is None:
        raise _fail(TypeError, f"{what} must be a numpy array or a torch tensor, got {type(value).__name__}")
    try:
        array = np.array(value)
    except (TypeError, ValueError) as exc:
        raise _fail(
            TypeError, f"{what} must be a numpy array or a torch tensor, got {type(value).__name__} ({exc})"
        ) from None
    if array.dtype == object:
        raise _fail(
            TypeError, f"{what} must be a numpy array or a torch tensor of numbers, got {reprlib.repr(value)}"
        )
    return torch.from_numpy(array)


def _dtype(tensor: torch.Tensor) -> str:
    """The dtype's name as numpy and torch both spell it (``float32``, ``int64``)."""
    return str(tensor.dtype).removeprefix("torch.")


def _check_images(split: str, value: object) -> torch.Tensor:
    """``(N, H, W)`` or ``(N, 3, H, W)`` uint8 images, channels first, or a clear error."""
    images = _as_tensor(value, f"{split} images")
    if images.dtype != torch.uint8:
        raise _fail(
            TypeError,
            f"{split} images must be uint8 (pixel values 0-255), got {_dtype(images)}; convert them, e.g. "
            f"(images * 255).round().astype(np.uint8) for floats in [0, 1]",
        )
    shape = tuple(images.shape)
    if images.dim() == 4 and shape[3] in (1, 3):
        images = images[..., 0] if shape[3] == 1 else images.permute(0, 3, 1, 2)
    elif images.dim() == 4 and shape[1] in (1, 3):
        raise _fail(
            ValueError,
            f"{split} images of shape {shape} look channels first; give them channels last, (N, H, W, "
            f"{shape[1]}): images.transpose(0, 2, 3, 1) (numpy) or images.permute(0, 2, 3, 1) (torch)",
        )
    elif images.dim() != 3:
        raise _fail(
            ValueError,
            f"{split} images must be (N, H, W) (grayscale) or (N, H, W, 3) (RGB), got shape {shape}; "
            f"a single image needs a leading batch dimension, images[None]",
        )
    if shape[0] == 0:
        raise _fail(ValueError, f"{split} has no images (shape {shape}); give at least one")
    height, width = int(images.shape[-2]), int(images.shape[-1])
    if not (1 <= height <= MAX_CANVAS_SIDE and 1 <= width <= MAX_CANVAS_SIDE):
        raise _fail(
            ValueError,
            f"{split} images are {height}x{width}: every side must be 1 to {MAX_CANVAS_SIDE} pixels "
            f"(MAX_CANVAS_SIDE, the largest canvas); resize them",
        )
    return images.contiguous()


def _check_labels(split: str, value: object, count: int) -> torch.Tensor:
    """``(N,)`` int64 class indices (``N = count``), or a clear error."""
    labels = _as_tensor(value, f"{split} labels")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise _fail(
            TypeError,
            f"{split} labels must be integers (class indices 0..C-1), got {_dtype(labels)}; convert them, "
            f"e.g. labels.astype(np.int64)",
        )
    if labels.dim() != 1:
        raise _fail(
            ValueError,
            f"{split} labels must be 1-D, one class index per image, got shape {tuple(labels.shape)}; "
            f"flatten them, e.g. labels.reshape(-1)",
        )
    if labels.shape[0] != count:
        raise _fail(
            ValueError,
            f"{split} has {labels.shape[0]} labels for {count} images; give exactly one label per image",
        )
    values = labels.numpy()  # numpy compares every integer type (torch's unsigned ones too)
    low, high = values.min(), values.max()
    if low < 0:
        at = int(np.flatnonzero(values < 0)[0])
        raise _fail(
            ValueError,
            f"{split} labels must be class indices >= 0, got {int(low)} (at index {at}); map your classes "
            f"to 0..C-1",
        )
    if high >= MAX_CLASSES:
        raise _fail(
            ValueError,
            f"{split} has label {int(high)}: at most {MAX_CLASSES} classes (MAX_CLASSES); map your classes "
            f"to 0..C-1",
        )
    return torch.from_numpy(values.astype(np.int64))


def _check_pair(split: str, pair: object) -> SplitData:
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise _fail(
            TypeError,
            f"{split} must be an (images, labels) pair, got {type(pair).__name__} {reprlib.repr(pair)}; "
            f"e.g. {split}=(x_{split}, y_{split})",
        )
    images = _check_images(split, pair[0])
    return SplitData(images, _check_labels(split, pair[1], int(images.shape[0])))


class ImageDataset:
    """Labelled images of your own, with their train/val/test split, for any glimpse task.

    Args:
        train: ``(images, labels)``: uint8 images ``(N, H, W)`` (grayscale) or ``(N, H, W, 3)``
            (RGB), numpy arrays or torch tensors, and ``(N,)`` integer labels.
        test: ``(images, labels)`` of the test split, the same size and channels.
        val: ``(images, labels)`` of the validation split; ``None`` (default): carved from
            ``train`` by the rule of MNIST's (:func:`~glimpse_env.data.carve_val`): the last
            ``val_size`` training images.
        num_classes: ``C``; default ``max label + 1`` over every split. At least that, at most
            :data:`MAX_CLASSES`.
        class_names: a name per class, index = label (default ``"0"``, ``"1"``, ...).
        name: the dataset's name, part of every fixed canvas's key (see
            :func:`~glimpse_env.canvas.fixed_keys`): datasets of one name and image size get
            the same positions and clutter draws for the same canvas index. ``"mnist"`` for
            MNIST's own arrays gives exactly MNIST's fixed canvases.
        val_size: with ``val=None``, how many training images are held out (default
            :func:`~glimpse_env.data.default_val_size`: one in twelve, MNIST's share, so 5,000 of
            MNIST's 60,000 training images).

    The arrays are copied (channels first, as the canvases are) and are not to be changed.
    The dataset is immutable; copies (``copy.copy``, ``copy.deepcopy``, and so ``gym.make``'s)
    are the object itself, and two datasets are equal only if they are the same object. A
    pickle carries the images (a task on MNIST carries only the name ``"mnist"``).
    """

    __slots__ = (
        "_on_device",
        "channels",
        "class_names",
        "image_shape",
        "name",
        "num_classes",
        "test",
        "train",
        "val",
        "val_carved",
    )

    train: SplitData
    """The training split: ``(N, H, W)`` or ``(N, 3, H, W)`` uint8 images and ``(N,)`` int64 labels."""
    val: SplitData
    """The validation split (given, or carved from the training images)."""
    test: SplitData
    """The test split."""
    num_classes: int
    """``C``: the labels are ``0 .. C - 1``."""
    class_names: tuple[str, ...]
    """A name per class, index = label."""
    name: str
    """The dataset's name (part of the fixed canvases' keys)."""
    channels: int
    """1 (grayscale) or 3 (RGB)."""
    image_shape: tuple[int, int]
    """``(H, W)`` of every image."""
    val_carved: bool
    """Whether ``val`` was carved from the given training images."""
    _on_device: dict[tuple[str, str], SplitData]

    def __init__(
        self,
        train: Any,
        test: Any,
        val: Any = None,
        *,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "custom",
        val_size: int | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise _fail(TypeError, f"name must be a non-empty string, got {reprlib.repr(name)}")
        given = {"train": _check_pair("train", train), "test": _check_pair("test", test)}
        if val is not None:
            if val_size is not None:
                raise _fail(ValueError, "val_size carves val from train; it does not apply when val is given")
            given["val"] = _check_pair("val", val)
        first = given["train"].images
        for split, data in given.items():
            if data.images.shape[1:] != first.shape[1:]:
                raise _fail(
                    ValueError,
                    f"{split} images are {_describe(data.images)} but train images are {_describe(first)}; "
                    f"every split must hold images of one size and channel count",
                )
        if val is None:
            total = int(first.shape[0])
            if total < 2:
                raise _fail(
                    ValueError,
                    f"train has {total} image: too few to carve a val split from; give at least 2 "
                    f"training images, or val=(images, labels)",
                )
            held_out = default_val_size(total)
            if val_size is not None:
                held_out = check_int(val_size, "ImageDataset: val_size", low=1, high=total - 1)
            given["train"], given["val"] = carve_val(given["train"].images, given["train"].labels, held_out)
        largest = max(int(given[split].labels.max()) for split in given)
        if num_classes is None:
            classes = largest + 1
        else:
            classes = check_int(num_classes, "ImageDataset: num_classes", low=1, high=MAX_CLASSES)
            if classes <= largest:
                split = next(s for s in SPLITS if int(given[s].labels.max()) == largest)
                raise _fail(
                    ValueError,
                    f"num_classes={classes} but {split} has label {largest}: every label must be below "
                    f"num_classes; pass num_classes >= {largest + 1}, or leave it None",
                )
        if class_names is None:
            names = tuple(str(c) for c in range(classes))
        else:
            if isinstance(class_names, str) or not isinstance(class_names, Sequence):
                raise _fail(
                    TypeError, f"class_names must be a sequence of strings, got {reprlib.repr(class_names)}"
                )
            names = tuple(class_names)
            if not all(isinstance(n, str) for n in names):
                raise _fail(TypeError, f"class_names must be strings, got {reprlib.repr(class_names)}")
            if len(names) != classes:
                raise _fail(
                    ValueError,
                    f"{len(names)} class_names for {classes} classes; give one name per class "
                    f"(index = label)",
                )
        put = object.__setattr__
        put(self, "train", given["train"])
        put(self, "val", given["val"])
        put(self, "test", given["test"])
        put(self, "num_classes", classes)
        put(self, "class_names", names)
        put(self, "name", name)
        put(self, "channels", 1 if first.dim() == 3 else int(first.shape[1]))
        put(self, "image_shape", (int(first.shape[-2]), int(first.shape[-1])))
        put(self, "val_carved", val is None)
        put(self, "_on_device", {})

    @classmethod
    def from_torchvision(
        cls,
        train: Any,
        test: Any,
        val: Any = None,
        *,
        name: str | None = None,
        num_classes: int | None = None,
        val_size: int | None = None,
    ) -> ImageDataset:
        """A dataset from torchvision datasets (or anything with ``.data`` and ``.targets``).

        ``.data`` is the images (``(N, H, W)`` uint8 as MNIST, FashionMNIST and KMNIST hold
        them, ``(N, H, W, 3)`` as CIFAR10 and CIFAR100 do), ``.targets`` the labels (a tensor or
        a list). ``.classes``, when there, gives the class names and their number; ``name``
        defaults to the dataset's class name (``"CIFAR10"``). Nothing is downloaded here::

            from torchvision.datasets import CIFAR10

            dataset = ImageDataset.from_torchvision(
                CIFAR10(root, train=True, download=True), CIFAR10(root, train=False)
            )
        """

        def pair(source: Any, split: str) -> tuple[Any, Any]:
            data, targets = getattr(source, "data", None), getattr(source, "targets", None)
            if data is None or targets is None:
                raise _fail(
                    TypeError,
                    f"from_torchvision: the {split} dataset, a {type(source).__name__}, has no .data and "
                    f".targets (torchvision's MNIST, FashionMNIST, KMNIST and CIFAR have them); build "
                    f"ImageDataset(train=(images, labels), ...) from its arrays instead",
                )
            return data, targets

        classes = getattr(train, "classes", None)
        class_names = tuple(str(c) for c in classes) if classes else None
        if class_names is not None and num_classes is None:
            num_classes = len(class_names)
        elif class_names is not None and len(class_names) != num_classes:
            class_names = None
        return cls(
            pair(train, "train"),
            pair(test, "test"),
            None if val is None else pair(val, "val"),
            num_classes=num_classes,
            class_names=class_names,
            name=type(train).__name__ if name is None else name,
            val_size=val_size,
        )

    # ------------------------------------------------------------------ splits
    def split(self, split: str) -> SplitData:
        """The images and labels of ``split`` (``"train"``, ``"val"`` or ``"test"``), on the CPU."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        data: SplitData = getattr(self, split)
        return data

    def split_to(self, split: str, device: str | torch.device = "cpu") -> SplitData:
        """:meth:`split` on ``device``, copied there once per dataset and device."""
        data = self.split(split)
        where = torch.device(device)
        if where.type == "cpu":
            return data
        key = (split, str(where))
        found = self._on_device.get(key)
        if found is None:
            found = SplitData(data.images.to(where), data.labels.to(where))
            self._on_device[key] = found
        return found

    @property
    def split_sizes(self) -> dict[str, int]:
        """The number of images of each split."""
        return {split: int(self.split(split).labels.shape[0]) for split in SPLITS}

    # ------------------------------------------------------------------ the object
    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ImageDataset is immutable: cannot set {name!r}; build a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"ImageDataset is immutable: cannot delete {name!r}")

    def __copy__(self) -> ImageDataset:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ImageDataset:
        return self

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the device copies (made again where the pickle is loaded)."""
        return {slot: getattr(self, slot) for slot in self.__slots__ if slot != "_on_device"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for slot, value in state.items():
            object.__setattr__(self, slot, value)
        object.__setattr__(self, "_on_device", {})

    def __repr__(self) -> str:
        sizes = self.split_sizes
        height, width = self.image_shape
        return (
            f"ImageDataset(name={self.name!r}, {_CHANNELS.get(self.channels, f'{self.channels}-channel')} "
            f"{height}x{width} images, {self.num_classes} classes, train={sizes['train']}, "
            f"val={sizes['val']}{' (carved from train)' if self.val_carved else ''}, test={sizes['test']})"
        )


def _describe(images: torch.Tensor) -> str:
    """``28x28`` or ``32x32x3``: the size (and channels) of channels-first images."""
    height, width = int(images.shape[-2]), int(images.shape[-1])
    return f"{height}x{width}" if images.dim() == 3 else f"{height}x{width}x{int(images.shape[1])}"
