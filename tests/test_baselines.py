"""The supervised baselines: models, training, evaluation and pictures, on the real data (tiny budgets)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.visualize import CAPTION, GAP
from baselines import evaluate, train, visualize
from baselines.models import (
    BaselineConfig,
    ConvEncoder,
    FeedForward,
    SelfAttentionCNN,
    SimpleCNN,
    as_inputs,
    build_model,
    count_parameters,
    model_from_config,
)
from glimpse_engine.averaging import AVERAGE_KEY
from glimpse_engine.checkpoints import inference_weights, load_checkpoint, save_checkpoint
from glimpse_engine.errors import CheckpointError, RunFolderError
from glimpse_env import CanvasBatch

TINY = ["--images-per-epoch", "512", "--batch-size", "64", "--image-every", "0", "--no-progress"]
TINY += ["--threads", "1"]


def fit(tmp_path: Path, *extra: str, name: str = "run") -> dict:
    return train.main(["--run-dir", str(tmp_path / name), "--env", "GlimpseMNIST-Fashion-v0", *TINY, *extra])


# ----------------------------------------------------------------------------- models
def test_parameter_counts_match_the_study_on_the_cluttered_canvas() -> None:
    cnn = build_model("cnn", (40, 40), 10)
    attention = build_model("self_attention", (40, 40), 10)
    assert isinstance(cnn, SimpleCNN) and isinstance(attention, SelfAttentionCNN)
    assert abs(count_parameters(cnn) - 1.83e6) <= 0.05 * 1.83e6  # the study: 1.83M
    assert count_parameters(cnn.fc1) > 0.95 * count_parameters(cnn)  # the study: 1.77M of it in the first FC
    assert abs(count_parameters(attention) - 0.47e6) <= 0.05 * 0.47e6  # the study: 0.47M
    assert count_parameters(attention) <= 470_000
    # the counts the README and the models' docstring state
    assert count_parameters(cnn) == 1_826_676 and count_parameters(attention) == 456_555
    assert count_parameters(build_model("cnn", (28, 28), 10)) == 818_676
    assert count_parameters(build_model("self_attention", (28, 28), 10)) == 455_275


@pytest.mark.parametrize("shape", [(28, 28), (40, 40), (60, 60), (100, 100), (28, 40)])
def test_output_shapes_follow_the_docstrings(shape: tuple[int, int]) -> None:
    images = torch.rand(5, 1, *shape)
    h, w = ConvEncoder.output_shape(shape)
    encoder = ConvEncoder()
    assert encoder(images).shape == (5, 64, h, w)  # (B, F, h, w)
    assert h == ((shape[0] - 1) // 2 - 1) // 2 and w == ((shape[1] - 1) // 2 - 1) // 2
    for name in ("cnn", "self_attention"):
        assert build_model(name, shape, 7)(images).shape == (5, 7)  # (B, C)
    attention = build_model("self_attention", shape, 10)
    assert isinstance(attention, SelfAttentionCNN)
    rows, columns = -(-h // 3), -(-w // 3)
    assert attention.blocks(images).shape == (5, rows * columns, 64 * 9)  # (B, n, F b^2)
    maps = attention.explain(images)
    assert maps.logits.shape == (5, 10) and maps.grid == (rows, columns)
    assert maps.pooling.shape == (5, rows * columns) and maps.attention.shape == (
        5,
        rows * columns,
        rows * columns,
    )
    torch.testing.assert_close(maps.pooling.sum(1), torch.ones(5))
    torch.testing.assert_close(maps.attention.sum(2), torch.ones(5, rows * columns))
    torch.testing.assert_close(maps.logits, attention(images))  # explain and forward agree


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(7, 48),
    width=st.integers(7, 48),
    block=st.integers(1, 4),
    data=st.data(),
)
def test_blocks_are_the_feature_map_cut_naively(
    height: int, width: int, block: int, data: st.DataObject
) -> None:
    """Blocks of ``b x b`` cells, one every ``s`` cells (``s = b``: a tiling, the default), zero-padded
    past the edge, cover every cell; each cell's weight is the sum of the weights of its blocks."""
    stride = data.draw(st.integers(0, block), label="block_stride")  # 0: the block size
    config = BaselineConfig(
        name="self_attention",
        canvas_shape=(height, width),
        num_classes=10,
        block_size=block,
        block_stride=stride,
    )
    model = SelfAttentionCNN(config)
    step = stride or block
    images = torch.rand(2, 1, height, width)
    features = model.encoder(images)
    h, w = features.shape[2:]
    rows, columns = model.grid
    expected = torch.zeros(2, rows * columns, 64 * block * block)
    weights = torch.rand(2, rows * columns)
    cells = torch.zeros(2, *model.covered)
    for r in range(rows):
        for c in range(columns):
            cut = torch.zeros(2, 64, block, block)
            part = features[:, :, r * step : r * step + block, c * step : c * step + block]
            cut[:, :, : part.shape[2], : part.shape[3]] = part  # zero padding past the edge
            expected[:, r * columns + c] = cut.reshape(2, -1)
            cells[:, r * step : r * step + block, c * step : c * step + block] += weights[
                :, r * columns + c, None, None
            ]
    if step == block:
        assert (rows, columns) == (-(-h // block), -(-w // block))
    # the last block reaches the last cell, and one block fewer would not
    assert (rows - 1) * step + block >= h and (rows == 1 or h > (rows - 2) * step + block)
    assert (columns - 1) * step + block >= w and (columns == 1 or w > (columns - 2) * step + block)
    torch.testing.assert_close(model.blocks(images), expected)
    torch.testing.assert_close(model.cell_weights(weights), cells)


def test_overlapping_blocks_keep_the_parameters_but_the_position_embedding() -> None:
    """``block_stride < block_size``: more blocks (25 instead of 9 on 28x28 with ``b = 2``, ``s = 1``), the
    same weights but one position vector per block; a config saved before the field existed loads."""
    base = BaselineConfig(
        name="self_attention", canvas_shape=(28, 28), num_classes=10, block_size=2, pool_heads=3
    )
    saved = dataclasses.asdict(base)
    del saved["block_stride"]
    assert BaselineConfig.from_dict(saved) == base and base.stride == 2
    overlapping = SelfAttentionCNN(dataclasses.replace(base, block_stride=1))
    assert overlapping.grid == (5, 5) and SelfAttentionCNN(base).grid == (3, 3)
    assert count_parameters(overlapping) - count_parameters(SelfAttentionCNN(base)) == (25 - 9) * 256
    assert count_parameters(overlapping) <= 470_000
    maps = overlapping.explain(torch.rand(3, 1, 28, 28))
    assert maps.pooling.shape == (3, 25) and maps.attention.shape == (3, 25, 25)
    with pytest.raises(ValueError, match=r"block_stride must be in \[1, block_size = 2\].*got 3"):
        dataclasses.replace(base, block_stride=3)
    with pytest.raises(ValueError, match="block_stride must be in"):
        dataclasses.replace(base, block_stride=-1)


@pytest.mark.parametrize("stride", [0, 1])
def test_picture_tints_the_cells_by_their_blocks_weights(stride: int) -> None:
    """The attention panel is redder where the cells weigh more (tiling or overlapping blocks)."""
    torch.manual_seed(0)
    config = BaselineConfig(
        name="self_attention", canvas_shape=(28, 28), num_classes=10, block_size=2, block_stride=stride
    )
    model = SelfAttentionCNN(config)
    canvases = torch.zeros(2, 28, 28, dtype=torch.uint8)  # black canvases: the tint alone colours them
    picture = visualize.sample_picture(model, CanvasBatch(canvases, torch.tensor([0, 1])), count=2)
    zoom = visualize.PANEL_SIDE // 28
    side = 28 * zoom
    assert picture.shape == (2 * (side + GAP) + CAPTION, 2 * side + GAP, 3)
    cells = model.cell_weights(model.explain(as_inputs(canvases)).pooling)[0]  # (6, 6)
    hottest, coldest = divmod(int(cells.argmax()), 6), divmod(int(cells.argmin()), 6)
    panel = picture[side + GAP : 2 * side + GAP, :side].astype(int)

    def red(cell: tuple[int, int]) -> int:  # the middle pixel of the cell
        y, x = ((np.array(cell) * visualize.CELL_STRIDE + 1) * zoom).tolist()
        return int(panel[y, x, 0])

    assert red(hottest) > red(coldest)
    assert red(hottest) == int(255 * 0.4)  # the hottest cell is tinted fully


def test_bad_model_settings() -> None:
    with pytest.raises(ValueError, match="unknown model 'mlp'"):
        build_model("mlp", (28, 28), 10)
    with pytest.raises(ValueError, match="too small"):
        build_model("cnn", (4, 4), 10)
    with pytest.raises(ValueError, match="multiple of heads"):
        BaselineConfig(name="self_attention", canvas_shape=(28, 28), num_classes=10, heads=7)
    with pytest.raises(ValueError, match="ffn_hidden must be >= 0"):
        BaselineConfig(name="self_attention", canvas_shape=(28, 28), num_classes=10, ffn_hidden=-1)


def test_feed_forward_sublayer_is_a_post_norm_residual_and_off_by_default() -> None:
    """``ffn_hidden`` adds ``z <- LayerNorm(z + W_2 relu(W_1 z))`` after the attention; without it
    the model is the study's (and a checkpoint config saved before the field existed loads)."""
    base = BaselineConfig(name="self_attention", canvas_shape=(28, 28), num_classes=10, block_size=2)
    plain = SelfAttentionCNN(base)
    assert isinstance(plain.feed_forward, torch.nn.Identity)
    saved = dataclasses.asdict(base)
    del saved["ffn_hidden"]
    assert BaselineConfig.from_dict(saved) == base
    wide = SelfAttentionCNN(dataclasses.replace(base, ffn_hidden=160))
    assert count_parameters(wide) - count_parameters(plain) == (256 * 160 + 160) + (160 * 256 + 256) + 2 * 256
    assert count_parameters(wide) <= 470_000  # still within the study's budget on 28x28
    assert isinstance(wide.feed_forward, FeedForward)
    wide.eval()
    z = torch.randn(3, 9, 256)
    first, _, second, _ = wide.feed_forward.net
    expected = torch.nn.functional.layer_norm(z + second(torch.relu(first(z))), (256,))
    torch.testing.assert_close(wide.feed_forward(z), expected)  # the LayerNorm starts as the identity affine
    assert wide.explain(torch.rand(3, 1, 28, 28)).logits.shape == (3, 10)


def test_pool_heads_sum_the_blocks_under_k_weightings_side_by_side() -> None:
    """``pool_heads = K`` gives ``K`` softmax weightings of the blocks; the classifier reads the ``K``
    weighted sums concatenated. ``K = 1`` is the study's model (and old checkpoint configs load)."""
    base = BaselineConfig(name="self_attention", canvas_shape=(28, 28), num_classes=10, block_size=2)
    saved = dataclasses.asdict(base)
    del saved["pool_heads"]
    assert BaselineConfig.from_dict(saved) == base
    plain = SelfAttentionCNN(base)
    model = SelfAttentionCNN(dataclasses.replace(base, pool_heads=3)).eval()
    # K - 1 more score vectors (d + 1 each) and (K - 1) d more inputs to W_3
    assert count_parameters(model) - count_parameters(plain) == 2 * (256 + 1) + 2 * 256 * 128
    assert count_parameters(model) <= 470_000
    images = torch.rand(4, 1, 28, 28)
    maps = model.explain(images)
    assert maps.pooling_heads.shape == (4, 3, 9) and maps.pooling.shape == (4, 9)
    torch.testing.assert_close(maps.pooling_heads.sum(2), torch.ones(4, 3))
    torch.testing.assert_close(maps.pooling, maps.pooling_heads.mean(1))
    # the naive reading of the equation, one weighting at a time
    z = model.norm(
        (tokens := model.project(model.blocks(images)) + model.position)
        + model.attention(tokens, tokens, tokens, need_weights=False)[0]
    )
    sums = []
    for k in range(3):
        a = torch.softmax(z @ model.score.weight[k] + model.score.bias[k], dim=1)  # (B, n)
        sums.append((a[:, :, None] * z).sum(1))
    expected = model.fc2(torch.relu(model.fc1(torch.cat(sums, dim=1))))
    torch.testing.assert_close(maps.logits, expected)
    with pytest.raises(ValueError, match="every size"):
        BaselineConfig(name="self_attention", canvas_shape=(28, 28), num_classes=10, pool_heads=0)


@pytest.mark.parametrize("name", ["cnn", "self_attention"])
def test_feature_dropout_drops_the_encoders_features_in_training_only(name: str) -> None:
    """The features entering the first trained layer after the encoder lose about the asked
    share in training (the rest scaled up), and none in evaluation."""
    torch.manual_seed(0)
    model = model_from_config(
        BaselineConfig(name=name, canvas_shape=(28, 28), num_classes=10, feature_dropout=0.5)
    )
    first = model.fc1 if name == "cnn" else model.project
    seen: list[torch.Tensor] = []
    first.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach()))
    images = torch.rand(8, 1, 28, 28)
    reference = model.encoder(images).flatten(1) if name == "cnn" else model.blocks(images)
    model.train()
    model(images)
    kept = seen[-1] != 0
    assert 0.4 < 1 - kept.float().sum().item() / (reference != 0).sum().item() < 0.6
    torch.testing.assert_close(seen[-1][kept], 2 * reference[kept])
    model.eval()
    model(images)
    torch.testing.assert_close(seen[-1], reference)
    with pytest.raises(ValueError, match="feature_dropout"):
        BaselineConfig(name=name, canvas_shape=(28, 28), num_classes=10, feature_dropout=1.0)


# ----------------------------------------------------------------------------- training
def test_cosine_schedule_anneals_over_the_epochs_whatever_val_does(tmp_path: Path) -> None:
    fit(tmp_path, "--epochs", "3", "--lr-schedule", "cosine", "--patience", "5", "--eval-batch-size", "5000")
    history = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["history"]
    rates = [h["learning_rate"] for h in history]  # the rate each epoch trained with
    assert rates == pytest.approx([1e-3, 1e-3 * 0.75, 1e-3 * 0.25])  # (1 + cos(pi e / 3)) / 2


def test_short_training_beats_chance_by_far(tmp_path: Path) -> None:
    results = train.main(
        [
            "--env",
            "GlimpseMNIST-v0",
            "--run-dir",
            str(tmp_path / "cnn"),
            "--epochs",
            "1",
            "--images-per-epoch",
            "6400",
            "--image-every",
            "1",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert results["accuracy"] > 0.85, results["accuracy"]  # chance is 0.1
    assert results["n"] == 10_000 and results["env_id"] == "GlimpseMNIST-v0"
    assert results["params"] == 818_676 and results["model"] == "cnn"
    folder = tmp_path / "cnn"
    assert json.loads((folder / "results" / "test.json").read_text())["accuracy"] == results["accuracy"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("losses/cross_entropy", "charts/val_accuracy", "charts/learning_rate"):
        assert tag in tags["scalars"]
    assert "charts/images_per_second" in tags["scalars"] and "charts/canvas_share" in tags["scalars"]
    assert "charts/samples" in tags["images"]
    attention = train.main(
        [
            "--model",
            "self_attention",
            "--env",
            "GlimpseMNIST-v0",
            "--run-dir",
            str(tmp_path / "sa"),
            "--epochs",
            "1",
            "--images-per-epoch",
            "6400",
            "--image-every",
            "0",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert attention["accuracy"] > 0.6, attention["accuracy"]
    assert attention["params"] == 455_275


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("--train-size", "1024", "--model", "self_attention", "--dropout", "0.3"),
        ("--ema", "0.9", "--feature-dropout", "0.25"),
        ("--swa-start", "1", "--swa-lr", "5e-4", "--model", "self_attention"),
    ],
)
def test_resume_is_bit_identical_to_a_straight_run(tmp_path: Path, extra: tuple[str, ...]) -> None:
    fit(tmp_path, "--epochs", "2", *extra, name="straight")
    fit(tmp_path, "--epochs", "1", *extra, name="split")
    train.main(["--resume", str(tmp_path / "split"), "--epochs", "2", "--no-progress"])
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    results = json.loads((tmp_path / "split" / "results" / "test.json").read_text())
    assert results["resumed_with"] == [
        f"python -m baselines.train --resume {tmp_path / 'split'} --epochs 2 --no-progress"
    ]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert (a[AVERAGE_KEY] is None) == ("--ema" not in extra and "--swa-start" not in extra)
    for name, tensor in (a[AVERAGE_KEY] or {}).items():  # the weight average continues too
        assert torch.equal(tensor, b[AVERAGE_KEY][name]), name
    assert [h["val_accuracy"] for h in a["history"]] == [h["val_accuracy"] for h in b["history"]]


def test_the_weight_average_is_what_is_validated_and_tested(tmp_path: Path) -> None:
    results = fit(tmp_path, "--epochs", "1", "--ema", "0.99", name="ema")
    best = load_checkpoint(tmp_path / "ema" / "checkpoints" / "best.pt")
    averaged = inference_weights(best)
    assert averaged.keys() == best["model"].keys()
    assert any(not torch.equal(averaged[name], best["model"][name]) for name in averaged)
    # the evaluation script loads the average, and scores what the training run's test scored
    assert (
        evaluate.main(["--checkpoint", str(tmp_path / "ema" / "checkpoints" / "best.pt")]).accuracy
        == (results["accuracy"])
    )
    assert (
        evaluate.main(
            ["--checkpoint", str(tmp_path / "ema" / "checkpoints" / "best.pt"), "--split", "val"]
        ).accuracy
        == (best["best_val"])
    )
    with pytest.raises(ValueError, match="--ema must be in"):
        fit(tmp_path, "--ema", "1.0", name="bad-ema")
    assert not (tmp_path / "bad-ema").exists()


def test_stochastic_weight_averaging_averages_the_ends_of_epochs_at_a_constant_rate(tmp_path: Path) -> None:
    swa = ("--model", "self_attention", "--swa-start", "2", "--swa-lr", "3e-4", "--patience", "5")
    fit(tmp_path, "--epochs", "2", *swa, name="swa")
    second = load_checkpoint(tmp_path / "swa" / "checkpoints" / "last.pt")
    assert second[AVERAGE_KEY] is not None  # one epoch averaged: the average is that epoch's weights
    for name, weights in inference_weights(second).items():
        assert torch.equal(weights, second["model"][name]), name
    results = train.main(["--resume", str(tmp_path / "swa"), "--epochs", "3", "--no-progress"])
    third = load_checkpoint(tmp_path / "swa" / "checkpoints" / "last.pt")
    # the schedule until --swa-start, then the constant --swa-lr
    assert [h["learning_rate"] for h in third["history"]] == [1e-3, 3e-4, 3e-4]
    averaged = inference_weights(third)
    for name, weights in averaged.items():  # the equal mean of the ends of epochs 2 and 3
        torch.testing.assert_close(weights, (second["model"][name] + third["model"][name]) / 2)
        assert not torch.equal(weights, third["model"][name]), name
    # validation selected on the average, and the evaluation script scores what the run scored
    best = tmp_path / "swa" / "checkpoints" / "best.pt"
    assert evaluate.main(["--checkpoint", str(best)]).accuracy == results["accuracy"]
    best_val = load_checkpoint(best)["best_val"]
    assert evaluate.main(["--checkpoint", str(best), "--split", "val"]).accuracy == best_val
    bad = {
        "two weight averages": ("--swa-start", "1", "--ema", "0.9"),
        "give --swa-start too": ("--swa-lr", "1e-4"),
        "after the last epoch": ("--swa-start", "4", "--epochs", "3"),
        "an epoch >= 1": ("--swa-start", "-1"),
        "--swa-lr must be > 0": ("--swa-start", "1", "--swa-lr", "0"),
    }
    for message, flags in bad.items():
        with pytest.raises(ValueError, match=message):
            fit(tmp_path, *flags, name="bad-swa")
        assert not (tmp_path / "bad-swa").exists()


def test_time_limit_stops_after_an_epoch_and_still_tests(tmp_path: Path) -> None:
    results = fit(tmp_path, "--epochs", "5", "--time-limit", "0", name="timed")
    assert results["epochs"] == 1 and results["n"] == 10_000


def test_bad_input_is_refused_and_nothing_is_overwritten(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--model", "resnet"])
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match="GlimpseMNIST-Nope-v0"):
        fit(tmp_path, "--env", "GlimpseMNIST-Nope-v0", name="badenv")
    with pytest.raises(ValueError, match=r"train_size must be an integer in \[1, 55000\]"):
        fit(tmp_path, "--train-size", "60000", name="large")
    with pytest.raises(ValueError, match="label-smoothing"):
        fit(tmp_path, "--label-smoothing", "1.5", name="smooth")
    with pytest.raises(ValueError, match="label-smoothing"):
        fit(tmp_path, "--label-smoothing", "1.5", name="smooth")
    with pytest.raises(ValueError, match="multiple of heads"):
        fit(tmp_path, "--model", "self_attention", "--heads", "7", name="heads")
    assert not (tmp_path / "large").exists() and not (tmp_path / "badenv").exists()
    assert not (tmp_path / "heads").exists() and not (tmp_path / "smooth").exists()
    fit(tmp_path, "--epochs", "1", name="taken")
    before = (tmp_path / "taken" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(RunFolderError, match="--resume"):
        fit(tmp_path, "--epochs", "1", name="taken")
    assert (tmp_path / "taken" / "checkpoints" / "last.pt").read_bytes() == before
    # resuming as the other model type, or on another environment, is refused
    with pytest.raises(RunFolderError, match="--model 'self_attention'"):
        train.main(["--resume", str(tmp_path / "taken"), "--model", "self_attention"])
    with pytest.raises(RunFolderError, match="--env"):
        train.main(["--resume", str(tmp_path / "taken"), "--env", "GlimpseMNIST-v0"])
    last = tmp_path / "taken" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    state["model_config"]["name"] = "self_attention"
    save_checkpoint(last, state, state["config"])
    with pytest.raises(CheckpointError, match="another environment or model"):
        train.main(["--resume", str(tmp_path / "taken"), "--epochs", "2"])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"--device='cuda' is not available here"):
            fit(tmp_path, "--device", "cuda", name="cuda")
        assert not (tmp_path / "cuda").exists()


def test_evaluate_and_visualize_a_checkpoint(tmp_path: Path) -> None:
    fit(tmp_path, "--epochs", "1", "--model", "self_attention", name="sa")
    best = str(tmp_path / "sa" / "checkpoints" / "best.pt")
    out = tmp_path / "eval.json"
    result = evaluate.main(["--checkpoint", best, "--split", "val", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["n"] == 5000 and saved["env_id"] == "GlimpseMNIST-Fashion-v0"
    assert saved["params"] == 455_275 and saved["model"] == "self_attention"
    assert saved["accuracy"] == result.accuracy and len(saved["per_class"]) == 10
    assert saved["ci95"][0] <= saved["accuracy"] <= saved["ci95"][1]
    # the same accuracy as the training run's own test
    test = evaluate.main(["--checkpoint", best])
    assert test.accuracy == json.loads((tmp_path / "sa" / "results" / "test.json").read_text())["accuracy"]
    png = visualize.main(["--checkpoint", best, "--out", str(tmp_path / "a.png"), "--count", "3"])
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.size[0] > 3 * 140 and picture.size[1] > 2 * 140  # 3 columns, image and attention
    with pytest.raises(ValueError, match=r"\.png"):
        visualize.main(["--checkpoint", best, "--out", str(tmp_path / "a.gif")])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        evaluate.main(["--checkpoint", str(tmp_path / "missing.pt")])


def test_a_ram_checkpoint_is_not_a_baseline(tmp_path: Path) -> None:
    from agents import ram_reinforce

    ram_reinforce.main(
        [
            "--run-dir",
            str(tmp_path / "ram"),
            "--epochs",
            "1",
            "--episodes-per-epoch",
            "128",
            "--batch-size",
            "64",
            "--eval-episodes",
            "100",
            "--image-every",
            "0",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    with pytest.raises(CheckpointError, match="not a baseline checkpoint"):
        evaluate.main(["--checkpoint", str(tmp_path / "ram" / "checkpoints" / "best.pt")])
