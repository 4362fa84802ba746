"""Scoring: how predictions become an accuracy, its interval and the per-class accuracy.

:func:`score_predictions` is the one scoring function of the project (accuracy, Wilson 95%
interval, per-class accuracy): the evaluation protocol (:func:`glimpse_env.evaluation.evaluate`),
``agents.evaluate`` and ``baselines.evaluate`` all use it. :func:`monte_carlo_predictions`
decides the class of a canvas played ``M`` times; :class:`EvaluationResult` is what an
evaluation reports, and :func:`format_table` prints it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from glimpse_env.validation import check_int

__all__ = [
    "Z95",
    "EvaluationResult",
    "Scores",
    "format_table",
    "monte_carlo_predictions",
    "score_predictions",
    "wilson_interval",
]

#: z of a two-sided 95% normal interval
Z95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (95% by default).

    ``n = 0`` gives ``(0.0, 1.0)`` (no information); the lower bound of ``0 / n`` is 0 and
    the upper bound of ``n / n`` is 1, exactly. Raises ``ValueError`` unless
    ``0 <= correct <= n``.
    """
    if not 0 <= correct <= n:
        raise ValueError(f"the Wilson interval needs 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # the bounds at p = 0 and p = 1 are exactly 0 and 1 (rounding would leave 1 - 2e-16)
    low = 0.0 if correct == 0 else max(0.0, float(centre - half))
    high = 1.0 if correct == n else min(1.0, float(centre + half))
    return (low, high)


class Scores(NamedTuple):
    """What :func:`score_predictions` makes of predictions and true labels."""

    accuracy: float
    ci95: tuple[float, float]
    """Wilson score interval of the accuracy, 95%."""
    per_class: list[float]
    """``(C,)``: accuracy on the items of each true class; ``0.0`` for a class with none
    (see ``class_counts``)."""
    class_counts: list[int]
    """``(C,)``: items of each true class."""
    correct: int
    n: int


def _class_indices(values: Any, name: str, num_classes: int) -> np.ndarray:
    """``values`` as a 1-d int64 array of class indices in ``[0, num_classes)``, or a clear error."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be a 1-d integer array of class indices, got {array.dtype} of shape {array.shape}"
        )
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        raise ValueError(
            f"{name}[{int(bad[0])}] = {int(array[bad[0]])} is not a class: classes are 0..{num_classes - 1}"
        )
    return array.astype(np.int64)


def score_predictions(predictions: Any, labels: Any, *, num_classes: int) -> Scores:
    """Accuracy, its Wilson 95% interval and the per-class accuracy of ``predictions``.

    Args:
        predictions: ``(n,)`` predicted classes (numpy array, sequence or tensor, any device).
        labels: ``(n,)`` true classes.
        num_classes: ``C``; every prediction and label must be in ``0 .. C - 1``.

    Raises ``TypeError`` for anything but 1-d integers and ``ValueError`` for a class out
    of range, different lengths or nothing to score.
    """
    num_classes = check_int(num_classes, "num_classes", low=1)
    predicted = _class_indices(predictions, "predictions", num_classes)
    truth = _class_indices(labels, "labels", num_classes)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predictions and labels must have the same length, got {predicted.shape[0]} predictions "
            f"and {truth.shape[0]} labels"
        )
    n = int(truth.shape[0])
    if n == 0:
        raise ValueError("nothing to score: predictions and labels are empty")
    hit = predicted == truth
    counts = np.bincount(truth, minlength=num_classes)
    correct_per_class = np.bincount(truth[hit], minlength=num_classes)
    correct = int(correct_per_class.sum())
    per_class = correct_per_class / np.maximum(counts, 1)
    return Scores(
        accuracy=correct / n,
        ci95=wilson_interval(correct, n),
        per_class=per_class.tolist(),
        class_counts=counts.tolist(),
        correct=correct,
        n=n,
    )


def monte_carlo_predictions(labels: np.ndarray, scores: np.ndarray | None, *, num_classes: int) -> np.ndarray:
    """The class of each canvas from its ``M`` episodes.

    Args:
        labels: ``(P, M)`` int: the labels played in the ``M`` episodes of each of ``P`` canvases.
        scores: ``(P, M, C)`` the policy's class scores on the last step of each episode, or None.
        num_classes: ``C``.

    Returns:
        ``(P,)`` int64: with ``scores``, the argmax of their mean over the ``M`` episodes
        (a tie to the lowest class); without, the majority vote of the labels played, a tie
        between labels played equally often going to the one played first (in episode
        order), so no class is favoured by its index.
    """
    if scores is not None:
        return np.asarray(scores, dtype=np.float64).mean(axis=1).argmax(axis=1).astype(np.int64)
    played = np.asarray(labels, dtype=np.int64)
    counts = (played[:, :, None] == np.arange(num_classes)).sum(axis=1)  # (P, C)
    top = counts == counts.max(axis=1, keepdims=True)  # (P, C): the most played classes
    among_top = np.take_along_axis(top, played, axis=1)  # (P, M): episode m played one of them
    first = among_top.argmax(axis=1)
    return played[np.arange(played.shape[0]), first]


class EvaluationResult(NamedTuple):
    """A policy's evaluation on the canvases of a split (:func:`~glimpse_env.evaluation.evaluate`)."""

    env_id: str
    split: str
    policy: str
    """The policy's name."""
    n: int
    """Canvases evaluated."""
    mc_samples: int
    """Episodes per canvas (``agents.evaluate`` reports 0 for "the mean locations, once")."""
    accuracy: float
    ci95: tuple[float, float]
    """Wilson score interval of the accuracy, 95%."""
    mean_reward: float
    """Mean return of every episode played (``n * mc_samples`` of them): the share of right
    labels played, before any Monte Carlo combination (less the glimpse cost, and the
    fraction of right labels with ``reward="every_step"``, where those options are set)."""
    mean_glimpses: float
    """Mean glimpses per episode played: the step each episode answered at; ``n_glimpses``
    exactly for fixed-length episodes (without early answers)."""
    per_class: list[float]
    """``(C,)``: accuracy on the canvases of each class (0.0 for a class with none)."""
    class_counts: list[int]
    """``(C,)``: canvases of each class."""
    mean_locations: list[list[float]]
    """``(T, 2)``: mean ``(x, y)`` of glimpse ``1 .. T`` over every episode played that took
    it (every episode, without early answers; NaN for a glimpse no episode took)."""
    episodes_per_second: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (for JSON)."""
        return dict(self._asdict())


def format_table(result: EvaluationResult) -> str:
    """An :class:`EvaluationResult` as a small text table."""
    low, high = result.ci95
    return "\n".join(
        [
            f"policy {result.policy}, env {result.env_id}, split {result.split}, {result.n} canvases, "
            f"Monte Carlo samples {result.mc_samples}",
            f"accuracy {result.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"error {100 * (1 - result.accuracy):.2f}%, mean reward {result.mean_reward:.4f}, "
            f"mean glimpses {result.mean_glimpses:.2f}",
            "per class: " + " ".join(f"{i}:{a:.3f}" for i, a in enumerate(result.per_class)),
            "mean glimpse locations (x, y) per step: "
            + " ".join(f"({x:+.2f},{y:+.2f})" for x, y in result.mean_locations),
            f"{result.episodes_per_second:,.0f} episodes/s",
        ]
    )
