r"""The study's full-image classifiers: a simple CNN, and the same CNN with self-attention.

Both see the whole canvas that a glimpse environment shows (``(B, 1, H, W)`` float in
``[0, 1]``; ``(B, 3, H, W)`` for the RGB canvases of an RGB ``glimpse_env.ImageDataset``,
with ``in_channels=3``) and return class logits ``(B, C)``. Shapes below use ``B`` for the batch,
``C`` for the classes, ``F = 64`` for the encoder's channels and ``h x w`` for its output.

- :class:`ConvEncoder`       two convolutions of kernel 2 (32, then 64 filters), each
  followed by 2x2 max-pooling and a ReLU: ``(B, 1, H, W) -> (B, F, h, w)`` with
  ``h = ((H - 1) // 2 - 1) // 2`` (and ``w`` alike).
- :class:`SimpleCNN`         ``logits = W_2 relu(W_1 flatten(enc(x)))``: two fully connected
  layers on the flattened feature map.
- :class:`SelfAttentionCNN`  the feature map is cut into ``n = ceil(h/b) * ceil(w/b)`` blocks
  of ``b x b`` cells (``b = block_size``), each flattened to ``F b^2`` and projected to ``d``
  (with ``block_stride = s < b`` the blocks overlap, one every ``s`` cells:
  ``n = (ceil((h-b)/s) + 1) * (ceil((w-b)/s) + 1)``);
  plus a learned position embedding, the blocks attend to each other
  (``z = LayerNorm(e + MHA(e, e, e))``, ``heads`` heads, scaled dot-product attention),
  optionally followed by a Transformer encoder layer's position-wise feed-forward sublayer
  (``z <- LayerNorm(z + W_f2 relu(W_f1 z))``, ``ffn_hidden`` wide; off by default, as in the study);
  a softmax over the blocks weights their sum, ``s = \sum_i a_i z_i`` with
  ``a = softmax(w^T z)``, and ``logits = W_4 relu(W_3 s)``. With ``pool_heads = K > 1``
  there are ``K`` such weightings (``w_1 .. w_K``), and ``W_3`` reads their ``K`` sums side
  by side (``K d`` wide); ``K = 1`` is the study's model.

The study gives one parameter count per model (1.83M and 0.47M) but not every width: the
defaults here are chosen so that on the 40x40 cluttered canvas the counts are 1.83M
(:data:`CNN_HIDDEN`) and 0.46M (``d = 256``, 8 heads, 3x3 blocks, a 128-wide head), within
5% of the study's; :func:`parameter_counts` prints them per input size.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "MODEL_NAMES",
    "AttentionMaps",
    "BaselineConfig",
    "Classifier",
    "ConvEncoder",
    "FeedForward",
    "SelfAttentionCNN",
    "SimpleCNN",
    "as_inputs",
    "build_model",
    "count_parameters",
    "parameter_counts",
]

#: the models :func:`build_model` knows
MODEL_NAMES = ("cnn", "self_attention")
#: width of SimpleCNN's first fully connected layer (1.83M parameters on 40x40 canvases)
CNN_HIDDEN = 350
#: SelfAttentionCNN's defaults (0.46M parameters on 40x40 canvases): block width ``d``, heads,
#: block side ``b`` in feature-map cells, width of the classifier's hidden layer
D_MODEL = 256
HEADS = 8
BLOCK_SIZE = 3
HEAD_HIDDEN = 128
#: channels of the two convolutions (the study's)
ENCODER_CHANNELS = (32, 64)
#: kernel of the convolutions and of the max-pooling (the study's)
KERNEL = 2
POOL = 2


@dataclass(frozen=True)
class BaselineConfig:
    """The architecture of a baseline (everything a checkpoint must match to be loaded)."""

    name: str
    """``"cnn"`` or ``"self_attention"``."""
    canvas_shape: tuple[int, int]
    """``(H, W)`` of the canvases."""
    num_classes: int
    """``C``."""
    hidden: int = CNN_HIDDEN
    """cnn: width of the first fully connected layer."""
    d_model: int = D_MODEL
    """self_attention: width ``d`` of a block after projection."""
    heads: int = HEADS
    """self_attention: attention heads (``d`` must be a multiple)."""
    block_size: int = BLOCK_SIZE
    """self_attention: ``b``, a block is ``b x b`` cells of the feature map."""
    block_stride: int = 0
    """self_attention: ``s``, cells between the corners of neighbouring blocks, ``1 <= s <= b``; ``s < b``
    gives overlapping blocks (more of them, the same parameters but for the position embedding).
    0: ``s = b``, the blocks tile the feature map (the study's cut)."""
    head_hidden: int = HEAD_HIDDEN
    """self_attention: width of the classifier's hidden layer."""
    ffn_hidden: int = 0
    """self_attention: width of a position-wise feed-forward sublayer after the attention
    (``z <- LayerNorm(z + W_f2 relu(W_f1 z))``, as in a Transformer encoder layer); 0: none, the
    study's model."""
    pool_heads: int = 1
    """self_attention: ``K``, how many softmax weightings of the blocks are summed (each with its
    own score vector ``w_k``); the classifier reads the ``K`` sums concatenated (``K d``). 1: the
    study's single weighted sum."""
    dropout: float = 0.0
    """Dropout before the last layer (and on the attention weights), in training only."""
    feature_dropout: float = 0.0
    """Dropout on the encoder's features, where they enter the first trained layer after it
    (cnn: ``fc1``; self_attention: the block projection), in training only."""
    in_channels: int = 1
    """Channels of the canvases: 1 (grayscale, the study's), or 3 for RGB images
    (``CanvasSource.channels``); only the first convolution's input width changes."""

    @property
    def stride(self) -> int:
        """``s``: :attr:`block_stride`, or ``b`` where it is 0."""
        return self.block_stride or self.block_size

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> BaselineConfig:
        """The configuration a checkpoint saved with ``dataclasses.asdict`` (its tuple back)."""
        return cls(**{**saved, "canvas_shape": tuple(saved["canvas_shape"])})

    def __post_init__(self) -> None:
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.name!r}; the baselines are {list(MODEL_NAMES)}")
        for name in ("dropout", "feature_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        sizes = (*self.canvas_shape, self.num_classes, self.hidden, self.d_model, self.heads)
        if min((*sizes, self.block_size, self.head_hidden, self.pool_heads, self.in_channels)) < 1:
            raise ValueError(f"every size of a BaselineConfig must be >= 1, got {self}")
        if self.ffn_hidden < 0:
            raise ValueError(f"ffn_hidden must be >= 0 (0: no feed-forward sublayer), got {self.ffn_hidden}")
        if not 0 <= self.block_stride <= self.block_size:
            raise ValueError(
                f"block_stride must be in [1, block_size = {self.block_size}] (0: block_size, blocks that "
                f"tile the feature map), got {self.block_stride}: a larger stride would skip cells"
            )
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of heads ({self.heads})")
        if min(ConvEncoder.output_shape(self.canvas_shape)) < 1:
            raise ValueError(
                f"canvas_shape {self.canvas_shape} is too small for the encoder (two convolutions of kernel "
                f"{KERNEL}, each pooled by {POOL}): at least 7x7 is needed"
            )


class ConvEncoder(nn.Module):
    """The study's convolutional encoder: ``(B, 1, H, W) -> (B, F, h, w)``.

    ``relu(maxpool(conv_2(relu(maxpool(conv_1(x))))))``, convolutions of kernel 2 without
    padding (32 then 64 filters), max-pooling 2x2. ``in_channels`` (default 1): the input's
    channels, 3 for RGB canvases ``(B, 3, H, W)``.
    """

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        first, second = ENCODER_CHANNELS
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, first, KERNEL),
            nn.MaxPool2d(POOL),
            nn.ReLU(),
            nn.Conv2d(first, second, KERNEL),
            nn.MaxPool2d(POOL),
            nn.ReLU(),
        )
        self.channels = second

    @staticmethod
    def output_shape(canvas_shape: tuple[int, int]) -> tuple[int, int]:
        """``(h, w)`` of the feature map of an ``(H, W)`` canvas."""
        return tuple(((side - KERNEL + 1) // POOL - KERNEL + 1) // POOL for side in canvas_shape)  # type: ignore[return-value]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 1, H, W)`` -> features ``(B, F, h, w)``."""
        return self.layers(images)


class SimpleCNN(nn.Module):
    """The study's simple CNN baseline: ``logits = W_2 relu(W_1 flatten(enc(x)))``.

    ``x (B, 1, H, W) -> enc(x) (B, F, h, w) -> (B, F h w) -> (B, hidden) -> logits (B, C)``.
    In training, ``feature_dropout`` acts on ``flatten(enc(x))`` and ``dropout`` on
    ``relu(W_1 ...)``.
    """

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ConvEncoder(config.in_channels)
        h, w = ConvEncoder.output_shape(config.canvas_shape)
        self.feature_dropout = nn.Dropout(config.feature_dropout)
        self.fc1 = nn.Linear(self.encoder.channels * h * w, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.fc2 = nn.Linear(config.hidden, config.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 1, H, W)`` -> ``logits (B, C)``."""
        features = self.feature_dropout(self.encoder(images).flatten(1))
        return self.fc2(self.dropout(F.relu(self.fc1(features))))


class AttentionMaps(NamedTuple):
    """What :meth:`SelfAttentionCNN.explain` returns."""

    logits: torch.Tensor
    """``(B, C)``."""
    pooling: torch.Tensor
    """``(B, n)``: the softmax weights ``a`` of the blocks in the weighted sum (they sum to 1);
    with ``pool_heads > 1`` their mean over the ``K`` weightings (see ``pooling_heads``)."""
    pooling_heads: torch.Tensor
    """``(B, K, n)``: each of the ``K`` weightings of the blocks (rows sum to 1; ``K = pool_heads``)."""
    attention: torch.Tensor
    """``(B, n, n)``: self-attention weights, averaged over the heads (row ``i``: block ``i``'s
    query over all blocks; rows sum to 1)."""
    grid: tuple[int, int]
    """``(rows, columns)`` of blocks: block ``i`` is at row ``i // columns``, column ``i % columns``."""


class SelfAttentionCNN(nn.Module):
    """The CNN encoder with multi-head self-attention over blocks of its feature map.

    ``x (B, 1, H, W) -> enc(x) (B, F, h, w)``, padded with zeros to ``(rows - 1) s + b`` cells
    down and ``(columns - 1) s + b`` across (:attr:`covered`; a multiple of ``b`` when ``s = b``,
    the default tiling), cut into ``n = rows * columns`` blocks ``(B, n, F b^2)`` of ``b x b``
    cells, one every ``s`` cells, projected ``e = W_p blocks + P`` ``(B, n, d)``
    (``P`` a learned position embedding), ``z = LayerNorm(e + MHA(e, e, e))`` ``(B, n, d)``,
    with ``ffn_hidden > 0`` then ``z <- LayerNorm(z + W_f2 relu(W_f1 z))`` ``(B, n, d)``
    (``W_f1`` ``d -> ffn_hidden``), ``a_k = softmax_i(w_k^T z_i)`` ``(B, K, n)`` for the
    ``K = pool_heads`` weightings, ``s = [sum_i a_1i z_i, ..., sum_i a_Ki z_i]`` ``(B, K d)``,
    ``logits = W_4 relu(W_3 s)`` ``(B, C)`` (``K = 1``: the study's model). In training,
    ``feature_dropout`` acts on the blocks before ``W_p``, ``dropout`` on the attention
    weights, on the feed-forward sublayer's output and on ``relu(W_3 s)``.
    """

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ConvEncoder(config.in_channels)
        h, w = ConvEncoder.output_shape(config.canvas_shape)
        b, s = config.block_size, config.stride
        self.grid = (math.ceil(max(h - b, 0) / s) + 1, math.ceil(max(w - b, 0) / s) + 1)
        #: ``(rows, columns)`` of cells the blocks cover, the feature map padded with zeros to it
        self.covered = ((self.grid[0] - 1) * s + b, (self.grid[1] - 1) * s + b)
        self.padding = (0, self.covered[1] - w, 0, self.covered[0] - h)  # F.pad: left, right, top, bottom
        n_blocks = self.grid[0] * self.grid[1]
        self.feature_dropout = nn.Dropout(config.feature_dropout)
        self.project = nn.Linear(self.encoder.channels * b * b, config.d_model)
        self.position = nn.Parameter(torch.zeros(1, n_blocks, config.d_model))
        nn.init.normal_(self.position, std=0.02)
        self.attention = nn.MultiheadAttention(
            config.d_model, config.heads, dropout=config.dropout, batch_first=True
        )
        self.norm = nn.LayerNorm(config.d_model)
        # the feed-forward sublayer (identity when ffn_hidden is 0: the study's model)
        self.feed_forward: nn.Module = nn.Identity()
        if config.ffn_hidden:
            self.feed_forward = FeedForward(config.d_model, config.ffn_hidden, dropout=config.dropout)
        self.score = nn.Linear(config.d_model, config.pool_heads)
        self.fc1 = nn.Linear(config.pool_heads * config.d_model, config.head_hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.fc2 = nn.Linear(config.head_hidden, config.num_classes)

    def blocks(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 1, H, W)`` -> the encoder's blocks ``(B, n, F b^2)``, row by row."""
        features = F.pad(self.encoder(images), self.padding)  # (B, F, *covered)
        # (B, F b^2, n): each column one block (channels, then cells row-major), blocks row-major
        blocks = F.unfold(features, kernel_size=self.config.block_size, stride=self.config.stride)
        return blocks.transpose(1, 2)

    def cell_weights(self, block_weights: torch.Tensor) -> torch.Tensor:
        """``block_weights (B, n)`` -> ``(B, *covered)``: each cell of the (padded) feature map, the sum
        of the weights of the blocks it lies in (with tiling blocks, its block's weight)."""
        b = self.config.block_size
        # (B, b^2, n): a block's weight on each of its cells
        spread = block_weights.unsqueeze(1).expand(-1, b * b, -1)
        cells = F.fold(spread, self.covered, kernel_size=b, stride=self.config.stride)  # (B, 1, *covered)
        return cells.squeeze(1)

    def _attend(self, images: torch.Tensor, *, need_weights: bool) -> tuple[torch.Tensor, ...]:
        tokens = self.project(self.feature_dropout(self.blocks(images))) + self.position
        mixed, weights = self.attention(tokens, tokens, tokens, need_weights=need_weights)
        z = self.feed_forward(self.norm(tokens + mixed))
        pooling = torch.softmax(self.score(z).transpose(1, 2), dim=2)  # (B, K, n)
        pooled = torch.einsum("bkn,bnd->bkd", pooling, z).flatten(1)  # (B, K d)
        logits = self.fc2(self.dropout(F.relu(self.fc1(pooled))))
        return logits, pooling, weights

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images (B, 1, H, W)`` -> ``logits (B, C)``."""
        return self._attend(images, need_weights=False)[0]

    def explain(self, images: torch.Tensor) -> AttentionMaps:
        """The logits with the pooling and self-attention weights over the blocks."""
        logits, pooling, weights = self._attend(images, need_weights=True)
        return AttentionMaps(
            logits=logits, pooling=pooling.mean(1), pooling_heads=pooling, attention=weights, grid=self.grid
        )


class FeedForward(nn.Module):
    """A Transformer encoder layer's position-wise feed-forward sublayer, post-norm:
    ``z (B, n, d) -> LayerNorm(z + dropout(W_2 relu(W_1 z))) (B, n, d)``, ``W_1: d -> hidden``."""

    def __init__(self, d_model: int, hidden: int, *, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden), nn.ReLU(), nn.Linear(hidden, d_model), nn.Dropout(dropout)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm(z + self.net(z))


def as_inputs(canvases: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` uint8 canvases -> ``(B, 1, H, W)`` float32 in ``[0, 1]`` (as the retina reads
    them); ``(B, C, H, W)`` canvases (RGB, channels first) -> ``(B, C, H, W)``."""
    if canvases.dim() == 3:
        canvases = canvases.unsqueeze(1)
    return canvases.float().div_(255.0)


#: a baseline model, either kind
Classifier = typing.Union["SimpleCNN", "SelfAttentionCNN"]


def build_model(
    name: str,
    canvas_shape: tuple[int, int],
    num_classes: int,
    *,
    dropout: float = 0.0,
    in_channels: int = 1,
) -> SimpleCNN | SelfAttentionCNN:
    """A baseline by name (``"cnn"`` or ``"self_attention"``) with the default widths, for
    canvases of ``in_channels`` channels (3 for RGB)."""
    return model_from_config(
        BaselineConfig(
            name=name,
            canvas_shape=tuple(canvas_shape),  # type: ignore[arg-type]
            num_classes=num_classes,
            dropout=dropout,
            in_channels=in_channels,
        )
    )


def model_from_config(config: BaselineConfig) -> SimpleCNN | SelfAttentionCNN:
    """The baseline that ``config`` describes."""
    return SimpleCNN(config) if config.name == "cnn" else SelfAttentionCNN(config)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_counts(canvas_shapes: tuple[tuple[int, int], ...] = ((28, 28), (40, 40), (60, 60))) -> str:
    """A table of both models' parameter counts per canvas size (10 classes)."""
    lines = ["| canvas | cnn | of it, first fully connected | self_attention |", "| --- | --- | --- | --- |"]
    for shape in canvas_shapes:
        cnn = build_model("cnn", shape, 10)
        assert isinstance(cnn, SimpleCNN)
        attention = build_model("self_attention", shape, 10)
        lines.append(
            f"| {shape[0]}x{shape[1]} | {count_parameters(cnn):,} | {count_parameters(cnn.fc1):,} "
            f"| {count_parameters(attention):,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(parameter_counts())
