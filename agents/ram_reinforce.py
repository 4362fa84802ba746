"""Train the Recurrent Attention Model with REINFORCE plus a supervised classification loss.

    python -m agents.ram_reinforce                                   # the main job: Cluttered, ~10 min
    python -m agents.ram_reinforce --env GlimpseMNIST-v0 --epochs 200 --run-dir runs/ram_mnist
    python -m agents.ram_reinforce --resume runs/ram_mnist --epochs 400   # continue (and extend) a run
    torchrun --nproc_per_node=2 -m agents.ram_reinforce --env GlimpseMNIST-v0   # data-parallel

The agent learns only through the environment's API (see :mod:`agents.rollout`): the
native vector environment of ``--env`` plays ``--batch-size`` episodes in lockstep through
its tensor API. Every epoch is followed by a validation on the ``val`` split; the learning
rate is reduced when validation stops improving and training stops early after
``--patience`` epochs without a better validation accuracy. The ``test`` split is played
once, at the end, with the best checkpoint (by validation), with 1 and with
``--test-mc-samples`` Monte Carlo samples per image.

The run folder (``--run-dir``) gets ``config.json``, TensorBoard scalars (``charts/``,
``losses/``) and glimpse pictures, ``checkpoints/last.pt`` and ``checkpoints/best.pt`` and
``results/test.json``; see :mod:`glimpse_engine.runs`.

Under ``torchrun`` the model is trained with ``DistributedDataParallel``: every rank
plays its own environment (its own seed, or its own share of a fixed training set),
``--batch-size`` is per rank, the location noise of an update is drawn for the global
batch from one stream shared by the ranks (each uses its rows, so ``k`` ranks of ``B``
episodes play what one process of ``k B`` plays), and validation and test are shared
out and combined; see :mod:`glimpse_engine.distributed`.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from agents.evaluate import EvalResult, evaluate_model, format_table
from agents.ram import BatchShare, ModelConfig, RecurrentAttentionModel
from agents.rollout import EpisodeLoss, make_vector_env
from agents.visualize import trajectory_grid
from glimpse_engine.averaging import weight_average
from glimpse_engine.cli import run_main, trainer
from glimpse_engine.datasets import dataset_kwargs
from glimpse_engine.distributed import data_parallel, mean_over_ranks, rank_seed
from glimpse_engine.fit import (
    EpochResult,
    Fit,
    Learner,
    Program,
    TrainingDiverged,
    fit,
    make_scheduler,
    start,
)
from glimpse_engine.scoring import RunArgs

__all__ = ["Args", "TrainingDiverged", "main", "model_config"]

#: this trainer, as ``python -m`` runs it (recorded in a run's commands.json)
PROGRAM = "agents.ram_reinforce"


@dataclass
class Args(RunArgs):
    """Train the Recurrent Attention Model (Mnih et al. 2014) on a glimpse environment."""

    env: str = "GlimpseMNIST-Cluttered-v0"
    """registered environment id; the glimpses, patch size and scales come from it"""
    seed: int = 1
    """seed of the weights, the location draws and the training canvases"""
    epochs: int = 40
    """maximum number of epochs (the default is the main job's budget: under 10 minutes on 2 CPU cores)"""
    dataset: str | None = None
    """MODULE:NAME of your own images, a glimpse_env.ImageDataset (or a function returning one) that
    --env's canvases, clutter and retina are applied to (default: the id's own dataset)"""
    train_size: int | None = None
    """fix the training set to this many canvases (the study: 10000); default: a fresh canvas every episode"""
    train_initial_location: Literal["env", "random"] = "env"
    """first glimpse of the training episodes: env (where the environment's id puts it, the centre) or random
    (uniform in [-1, 1]^2, a regulariser: the training env is made with initial_location="random"); validation
    and test always play the environment as registered"""
    episodes_per_epoch: int | None = None
    """episodes per epoch (default: 55,000, or the fixed training set once)"""
    batch_size: int = 128
    """episodes per update and rank (under torchrun an update plays world_size * batch_size episodes; the
    learning rate is not rescaled)"""
    optimizer: Literal["adam", "sgd"] = "adam"
    """adam (the study) or sgd with momentum (the paper)"""
    learning_rate: float = 3e-4
    """initial learning rate"""
    momentum: float = 0.9
    """momentum of sgd"""
    lr_schedule: Literal["plateau", "linear"] = "plateau"
    """plateau: multiply by --lr-factor after --lr-patience epochs without a better val accuracy;
    linear: decay to 0 over --epochs (the paper)"""
    lr_factor: float = 0.5
    """factor of the plateau schedule"""
    lr_patience: int = 10
    """epochs without improvement before the plateau schedule reduces the learning rate"""
    patience: int = 50
    """early stopping: epochs without a better val accuracy before training stops"""
    std: float = 0.1
    """standard deviation of the Gaussian location policy (fixed)"""
    reinforce_weight: float = 1.0
    """weight of the REINFORCE term in the hybrid loss"""
    max_grad_norm: float | None = None
    """clip the gradient to this norm (none: no clipping)"""
    core: Literal["rnn", "lstm"] = "rnn"
    """core network: rnn (the paper's relu(W_i g + W_h h)) or lstm"""
    hidden_size: int = 256
    """hidden size of the core network"""
    glimpse_hidden: int = 128
    """h_g: width of the glimpse pathway of the glimpse network"""
    location_hidden: int = 128
    """h_l: width of the location pathway of the glimpse network"""
    glimpse_output: int = 256
    """width of the glimpse network's output g_t"""
    dropout: float = 0.0
    """dropout on g_t and on the last hidden state before the classifier (regularises a small --train-size)"""
    weight_decay: float = 0.0
    """decoupled weight decay (AdamW when > 0 with adam; L2 with sgd)"""
    ema: float = 0.0
    """decay of an exponential moving average of the weights, updated after every update; the average is
    what validation selects on and what the test plays (0: none; e.g. 0.999)"""
    val_mc_samples: int = 1
    """Monte Carlo samples per image in the validation after every epoch"""
    test_mc_samples: int = 10
    """Monte Carlo samples per image in the final test (M=1 is reported too)"""
    eval_episodes: int | None = None
    """validate and test on the first N canvases of val and test only (default: all; for quick checks)"""
    eval_batch_size: int = 1000
    """episodes per batch in validation and test"""
    image_every: int = 5
    """write a picture of glimpse trajectories to TensorBoard every N epochs (0: never)"""


def model_config(args: Args, envs: Any) -> ModelConfig:
    glimpse_shape = tuple(envs.single_observation_space["glimpse"].shape)
    return ModelConfig(
        glimpse_shape=glimpse_shape,  # type: ignore[arg-type]
        num_classes=int(envs.single_action_space["label"].n),
        glimpse_hidden=args.glimpse_hidden,
        location_hidden=args.location_hidden,
        glimpse_output=args.glimpse_output,
        hidden_size=args.hidden_size,
        core=args.core,
        dropout=args.dropout,
    )


@trainer(PROGRAM)  # torchrun's error reports; Ctrl-C: one line that says how to continue
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args, session = start(
        Args,
        argv,
        name=PROGRAM,
        per_epoch=lambda args: args.episodes_per_epoch,
        per_epoch_flag="--episodes-per-epoch",
        unit="episodes",
        default_run_dir=lambda args: f"runs/ram-{args.env}-seed{args.seed}",
    )
    cluster, device = session.cluster, session.device

    # ---------------------------------------------------------------- seeding
    # the location noise: one stream that every rank draws alike, each using its own rows of the
    # global batch (in one process, all of them), so k ranks of B episodes draw what one process of k B draws
    share = BatchShare(cluster.rank * args.batch_size, session.global_batch)
    noise = torch.Generator(device).manual_seed(args.seed)

    # ---------------------------------------------------------------- environment
    images = dataset_kwargs(args.dataset)  # {"dataset": ...} for your own images, else {}
    env_kwargs: dict[str, Any] = (
        {**images} if args.train_size is None else {**images, "train_size": args.train_size}
    )
    if args.train_initial_location == "random":
        env_kwargs["initial_location"] = "random"
    envs = make_vector_env(args.env, args.batch_size, device=device, split="train", **env_kwargs)
    envs.reset_tensors(seed=rank_seed(args.seed, cluster))  # the environment's own generator, per rank

    # ---------------------------------------------------------------- model
    mconfig = model_config(args, envs)
    model = RecurrentAttentionModel(mconfig).to(device)
    episode_loss = data_parallel(EpisodeLoss(model), cluster, device)  # what the updates run
    if cluster.distributed:
        torch.manual_seed(rank_seed(args.seed, cluster))  # dropout: this rank's own stream
    average = weight_average(model, args.ema)
    optimizer: torch.optim.Optimizer
    if args.optimizer == "adam":
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay, fused=True
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=args.learning_rate, momentum=args.momentum, weight_decay=args.weight_decay
        )
    scheduler = make_scheduler(
        optimizer, args.lr_schedule, epochs=args.epochs, factor=args.lr_factor, patience=args.lr_patience
    )

    # ---------------------------------------------------------------- one epoch of REINFORCE updates
    def train_epoch(epoch: int, updates: Iterable[int], fit: Fit) -> EpochResult:
        sums = torch.zeros(5, dtype=torch.float64, device=device)  # total, ce, baseline, reinforce, reward
        for update in updates:
            indices = fit.indices(update)  # a fixed training set's canvases, else fresh ones
            options = None if indices is None else {"indices": indices}
            rollout, losses = episode_loss(
                envs,
                std=args.std,
                reinforce_weight=args.reinforce_weight,
                options=options,
                generator=noise,
                share=share,
            )
            fit.step(losses.total, update)
            sums += torch.stack([*(t.detach() for t in losses), rollout.reward.mean()]).double()
        mean_over_ranks(sums, cluster)  # every rank's sums: the epoch's means over all of its episodes
        total, classification, baseline, reinforce, reward = (sums / session.updates_per_epoch).tolist()
        return EpochResult(
            scalars={
                "losses/total": total,
                "losses/classification": classification,
                "losses/baseline": baseline,
                "losses/reinforce": reinforce,
                "charts/train_reward": reward,
            },
            record={"train_reward": reward, "loss": total},
            summary=f"train reward {reward:.4f}",
        )

    def as_ram(module: torch.nn.Module) -> RecurrentAttentionModel:
        return typing.cast(RecurrentAttentionModel, module)  # the model, or its weight average's copy

    def play(model: torch.nn.Module, split: str, samples: int) -> EvalResult:
        return evaluate_model(
            as_ram(model),
            args.env,
            split=split,
            mc_samples=samples,
            std=args.std,
            batch_size=args.eval_batch_size,
            episodes=args.eval_episodes,
            generator=torch.Generator(device=device).manual_seed(args.seed),
            cluster=cluster,
            env_kwargs=images,
        )

    def test(model: torch.nn.Module, history: list[dict[str, Any]]) -> dict[str, Any]:
        results: dict[str, Any] = {"env_id": args.env}
        for samples in sorted({1, args.test_mc_samples}):
            result = play(model, "test", samples)
            cluster.say(format_table(result))
            results[f"test_mc{samples}"] = result.as_dict()
        final = results[f"test_mc{args.test_mc_samples}"]
        return {**results, "accuracy": final["accuracy"], "ci95": final["ci95"], "n": final["n"]}

    def restore_streams(own: Mapping[str, Any] | None, state: Mapping[str, Any], epoch: int) -> None:
        if own is None:  # saved by a job of another size: this rank's environment starts anew
            envs.reset_tensors(seed=rank_seed(args.seed + epoch, cluster))
        else:
            envs.np_random.bit_generator.state = own["env_rng"]
        if state.get("location_noise") is None:  # a checkpoint from before the stream was kept
            noise.manual_seed(args.seed + epoch)
        else:
            noise.set_state(state["location_noise"].cpu())  # the same on every rank

    program = Program(
        train_epoch=train_epoch,
        validate=lambda model: play(model, "val", args.val_mc_samples).accuracy,
        test=test,
        rank_streams=lambda: {"env_rng": envs.np_random.bit_generator.state},
        restore_streams=restore_streams,
        shared_state=lambda: {"location_noise": noise.get_state()},  # the ranks' shared stream
        picture=lambda model: trajectory_grid(
            as_ram(model), args.env, std=args.std, count=8, device=device, env_kwargs=images
        ),
        picture_tag="charts/glimpses",
    )
    learner = Learner(model, mconfig, optimizer, scheduler, average)
    return fit(
        session,
        program,
        learner,
        max_grad_norm=args.max_grad_norm,
        hint="try a lower --learning-rate or --max-grad-norm",
        banner=f"RAM on {args.env}",
        unit="episodes",
    )


if __name__ == "__main__":
    run_main(main)
