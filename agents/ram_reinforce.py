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
``results/test.json``; see :mod:`agents.runs`.

Under ``torchrun`` the model is trained with ``DistributedDataParallel``: every rank
plays its own environment (its own seed, or its own share of a fixed training set),
``--batch-size`` is per rank, the location noise of an update is drawn for the global
batch from one stream shared by the ranks (each uses its rows, so ``k`` ranks of ``B``
episodes play what one process of ``k B`` plays), and validation and test are shared
out and combined; see :mod:`agents.distributed`.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.elastic.multiprocessing.errors import record
from tqdm import tqdm

from agents.distributed import (
    data_parallel,
    from_main,
    join,
    leave,
    mean_over_ranks,
    on_main,
    rank_seed,
    update_share,
)
from agents.evaluate import EvalResult, evaluate_model, format_table
from agents.ram import BatchShare, ModelConfig, RecurrentAttentionModel
from agents.rollout import EpisodeLoss, make_vector_env
from agents.runs import (
    RESUMABLE,
    CheckpointError,
    RunFolderError,
    average_state,
    check_settings,
    command_line,
    evaluated_model,
    inference_weights,
    interruptible,
    load_checkpoint,
    open_run,
    open_writer,
    own_streams,
    parse_args,
    rank_streams,
    record_resume,
    restore_average,
    restore_torch_rng,
    resume_args,
    resume_state,
    run_main,
    save_epoch,
    started_by,
    stop_reason,
    torch_rng_state,
    use_data_dir,
    weight_average,
    write_json,
)
from agents.visualize import trajectory_grid
from glimpse_env.data import SPLIT_SIZES
from glimpse_env.vector import check_device

#: this trainer, as ``python -m`` runs it (recorded in a run's commands.json)
PROGRAM = "agents.ram_reinforce"


@dataclass
class Args:
    """Train the Recurrent Attention Model (Mnih et al. 2014) on a glimpse environment."""

    env: str = "GlimpseMNIST-Cluttered-v0"
    """registered environment id; the glimpses, patch size and scales come from it"""
    seed: int = 1
    """seed of the weights, the location draws and the training canvases"""
    epochs: int = 40
    """maximum number of epochs (the default is the main job's budget: under 10 minutes on 2 CPU cores)"""
    train_size: int | None = None
    """fix the training set to this many canvases (the study: 10000); default: a fresh canvas every episode"""
    train_initial_location: str = field(default="env", metadata={"choices": ("env", "random")})
    """first glimpse of the training episodes: env (where the environment's id puts it, the centre) or random
    (uniform in [-1, 1]^2, a regulariser: the training env is made with initial_location="random"); validation
    and test always play the environment as registered"""
    episodes_per_epoch: int | None = None
    """episodes per epoch (default: 55,000, or the fixed training set once)"""
    batch_size: int = 128
    """episodes per update and rank (under torchrun an update plays world_size * batch_size episodes; the
    learning rate is not rescaled)"""
    optimizer: str = field(default="adam", metadata={"choices": ("adam", "sgd")})
    """adam (the study) or sgd with momentum (the paper)"""
    learning_rate: float = 3e-4
    """initial learning rate"""
    momentum: float = 0.9
    """momentum of sgd"""
    lr_schedule: str = field(default="plateau", metadata={"choices": ("plateau", "linear")})
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
    core: str = field(default="rnn", metadata={"choices": ("rnn", "lstm")})
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
    device: str = "cpu"
    """cpu or cuda"""
    data_dir: str | None = None
    """folder of the MNIST / Fashion-MNIST raw files (default: $GLIMPSE_DATA_DIR, else the user cache)"""
    time_limit: float | None = None
    """stop after the first epoch that ends past this many minutes of training (the test still runs;
    a --resume starts the clock again)"""
    threads: int | None = None
    """torch intra-op threads (default: torch's own choice); 1 is fastest on a busy small machine"""
    run_dir: str | None = None
    """run folder (default: runs/ram-<env>-seed<seed>)"""
    resume: str | None = None
    """continue the run in this folder from its last checkpoint (--epochs may be raised)"""
    overwrite: bool = False
    """delete an existing run of this program in --run-dir first (a folder that holds anything else is
    refused)"""
    progress: bool = True
    """show a progress bar"""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


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


@record  # under torchrun: a rank's error is reported by the launcher, which ends the other ranks
@interruptible(PROGRAM)  # Ctrl-C: one line that says how to continue
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = resume_args(parse_args(Args, argv), argv, resumable=RESUMABLE, program=PROGRAM)
    check_settings(args)  # before anything is made or written
    use_data_dir(args.data_dir)
    cluster, device = join(check_device(args.device, "--device"))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.train_size is not None and (args.episodes_per_epoch or 0) > args.train_size:
        raise ValueError(
            f"--episodes-per-epoch {args.episodes_per_epoch} exceeds --train-size {args.train_size}: "
            f"an epoch shows every canvas of a fixed training set at most once"
        )
    episodes_per_epoch = args.episodes_per_epoch or args.train_size or SPLIT_SIZES["train"]
    global_batch = args.batch_size * cluster.world_size
    if global_batch > episodes_per_epoch:
        raise ValueError(
            f"--batch-size {args.batch_size} x {cluster.world_size} rank(s) is larger than an epoch "
            f"({episodes_per_epoch} episodes)"
        )
    run_dir = Path(args.resume or args.run_dir or f"runs/ram-{args.env}-seed{args.seed}")
    # the run's settings, and how its batch was made up (--batch-size is per rank)
    config = {**dataclasses.asdict(args), "world_size": cluster.world_size, "global_batch_size": global_batch}

    # ---------------------------------------------------------------- seeding
    random.seed(args.seed)
    torch.manual_seed(args.seed)  # the weights (the same on every rank); then dropout
    # the location noise: one stream that every rank draws alike, each using its own rows of the
    # global batch (in one process, all of them), so k ranks of B episodes draw what one process of k B draws
    share = BatchShare(cluster.rank * args.batch_size, global_batch)
    noise = torch.Generator(device).manual_seed(args.seed)

    # ---------------------------------------------------------------- environment
    env_kwargs: dict[str, Any] = {} if args.train_size is None else {"train_size": args.train_size}
    if args.train_initial_location == "random":
        env_kwargs["initial_location"] = "random"
    envs = make_vector_env(args.env, args.batch_size, device=device, split="train", **env_kwargs)
    envs.reset_tensors(seed=rank_seed(args.seed, cluster))  # the environment's own generator, per rank
    updates_per_epoch = max(1, episodes_per_epoch // global_batch)

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
    scheduler: Any
    if args.lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=args.lr_factor, patience=args.lr_patience
        )
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: max(0.0, 1 - epoch / args.epochs)
        )
    n_params = sum(p.numel() for p in model.parameters())

    # ---------------------------------------------------------------- run folder
    resume = args.resume is not None
    command = command_line(PROGRAM, argv)
    on_main(  # (a resume: the folder is checked, and nothing written yet)
        lambda: open_run(
            run_dir, config, program=PROGRAM, command=command, resume=resume, overwrite=args.overwrite
        ),
        cluster,
    )
    checkpoints = run_dir / "checkpoints"
    start_epoch, best_val, best_epoch, history = 0, -1.0, -1, []
    found = resume_state(checkpoints, map_location=device) if resume else None
    if resume and found is None:
        cluster.say(f"{run_dir} has no checkpoint yet: its training starts again from epoch 1")
    if found is not None:
        source, state = found
        if state["config"]["env"] != args.env or ModelConfig.from_dict(state["model_config"]) != mconfig:
            raise CheckpointError(f"{source} was made with another environment or model")
        model.load_state_dict(state["model"])
        restore_average(average, state)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val, best_epoch = state["epoch"], state["best_val"], state["best_epoch"]
        streams = own_streams(state, cluster)
        if streams is None:  # saved by a job of another size: this rank's streams start anew
            torch.manual_seed(rank_seed(args.seed + start_epoch, cluster))
            envs.reset_tensors(seed=rank_seed(args.seed + start_epoch, cluster))
            cluster.say(
                f"{run_dir} was trained on {state.get('world_size', 1)} rank(s): random streams start anew"
            )
        else:
            restore_torch_rng(streams, device)
            envs.np_random.bit_generator.state = streams["env_rng"]
        if state.get("location_noise") is None:  # a checkpoint from before the stream was kept
            noise.manual_seed(args.seed + start_epoch)
        else:
            noise.set_state(state["location_noise"].cpu())  # the same on every rank
        history = state["history"]
        cluster.say(
            f"resuming {run_dir} after epoch {start_epoch} (best val {best_val:.4f} at epoch {best_epoch}) "
            f"from {source.name}"
        )
    if resume:  # the checkpoint loaded and matched: only now is the resume recorded
        on_main(lambda: record_resume(run_dir, command, None if found is None else found[0]), cluster)
    writer = open_writer(run_dir, purge_step=start_epoch * updates_per_epoch, cluster=cluster)
    cluster.say(
        f"RAM on {args.env}: {n_params:,} parameters, "
        f"{updates_per_epoch} updates of {args.batch_size} episodes per epoch"
        + (f" on each of {cluster.world_size} ranks" if cluster.distributed else "")
    )

    def checkpoint_state(epoch: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            **average_state(average),
            "model_config": dataclasses.asdict(mconfig),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            **rank_streams(
                {**torch_rng_state(device), "env_rng": envs.np_random.bit_generator.state}, cluster
            ),
            "location_noise": noise.get_state(),  # the ranks' shared stream
            "epoch": epoch,
            "best_val": best_val,
            "best_epoch": best_epoch,
            "history": history,
            "n_params": n_params,
        }

    # ---------------------------------------------------------------- training loop
    clock = time.monotonic()
    for epoch in range(start_epoch + 1, args.epochs + 1):
        reason = stop_reason(
            epoch=epoch,
            first_epoch=start_epoch + 1,
            best_epoch=best_epoch,
            patience=args.patience,
            started=clock,
            time_limit=args.time_limit,
        )
        reason = from_main(reason, cluster)  # decided once: every rank stops together
        if reason is not None:
            cluster.say(reason)
            break
        sums = torch.zeros(5, dtype=torch.float64, device=device)  # total, ce, baseline, reinforce, reward
        start = time.perf_counter()
        order = None
        if args.train_size is not None:  # a fixed training set: every canvas once per epoch
            order = np.random.default_rng([args.seed, epoch]).permutation(args.train_size)
        bar = tqdm(
            range(updates_per_epoch),
            desc=f"epoch {epoch}",
            disable=not (args.progress and cluster.is_main),
            leave=False,
        )
        for update in bar:
            options = None
            if order is not None:
                options = {"indices": update_share(order, update, args.batch_size, cluster)}
            rollout, losses = episode_loss(
                envs,
                std=args.std,
                reinforce_weight=args.reinforce_weight,
                options=options,
                generator=noise,
                share=share,
            )
            if not bool(torch.isfinite(losses.total)):
                raise TrainingDiverged(
                    f"the loss is {float(losses.total.detach())} at epoch {epoch}, update {update + 1}; "
                    f"training stopped. "
                    f"The last good checkpoint is {checkpoints / 'last.pt'} (epoch {epoch - 1}); try a lower "
                    f"--learning-rate or --max-grad-norm"
                )
            optimizer.zero_grad(set_to_none=True)
            losses.total.backward()
            if args.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            if average is not None:
                average.update_parameters(model)
            sums += torch.stack([*(t.detach() for t in losses), rollout.reward.mean()]).double()
        bar.close()
        seconds = time.perf_counter() - start
        mean_over_ranks(sums, cluster)  # every rank's sums: the epoch's means over all of its episodes
        means = (sums / updates_per_epoch).tolist()
        val_generator = torch.Generator(device=device).manual_seed(args.seed)
        evaluated = evaluated_model(model, average)  # what validation and the pictures play
        val = evaluate_model(
            evaluated,
            args.env,
            split="val",
            mc_samples=args.val_mc_samples,
            std=args.std,
            batch_size=args.eval_batch_size,
            episodes=args.eval_episodes,
            generator=val_generator,
            cluster=cluster,
        )
        lr = optimizer.param_groups[0]["lr"]
        if args.lr_schedule == "plateau":
            scheduler.step(val.accuracy)
        else:
            scheduler.step()
        improved = val.accuracy > best_val
        if improved:
            best_val, best_epoch = val.accuracy, epoch
        step = epoch * updates_per_epoch
        images_per_second = updates_per_epoch * global_batch / seconds
        for name, value in zip(("total", "classification", "baseline", "reinforce"), means[:4], strict=True):
            writer.add_scalar(f"losses/{name}", value, step)
        writer.add_scalar("charts/train_reward", means[4], step)
        writer.add_scalar("charts/val_accuracy", val.accuracy, step)
        writer.add_scalar("charts/learning_rate", lr, step)
        writer.add_scalar("charts/images_per_second", images_per_second, step)
        if cluster.is_main and args.image_every and (epoch % args.image_every == 0 or epoch == 1):
            picture = trajectory_grid(evaluated, args.env, std=args.std, count=8, device=device)
            writer.add_image("charts/glimpses", picture, step, dataformats="HWC")
        history.append(
            {
                "epoch": epoch,
                "train_reward": means[4],
                "loss": means[0],
                "val_accuracy": val.accuracy,
                "learning_rate": lr,
                "seconds": seconds,
            }
        )
        state = checkpoint_state(epoch)
        if cluster.is_main:  # best.pt (when improved), then last.pt: a kill between leaves them consistent
            save_epoch(checkpoints, state, config, improved=improved)
        cluster.say(
            f"epoch {epoch}: train reward {means[4]:.4f}, val accuracy {val.accuracy:.4f}"
            f"{' (best)' if improved else ''}, lr {lr:.2e}, "
            f"{seconds:.1f} s ({images_per_second:,.0f} images/s)"
        )
    writer.flush()

    # ---------------------------------------------------------------- test, once, with the best checkpoint
    # (rank 0 reads it and sends it: the other ranks need not see the run folder)
    best: dict[str, Any] = on_main(lambda: load_checkpoint(checkpoints / "best.pt"), cluster)
    model.load_state_dict(inference_weights(best))
    results: dict[str, Any] = {
        "env_id": args.env,
        "best_epoch": best["epoch"],
        "val_accuracy": best["best_val"],
    }
    for samples in sorted({1, args.test_mc_samples}):
        generator = torch.Generator(device=device).manual_seed(args.seed)
        test: EvalResult = evaluate_model(
            model,
            args.env,
            split="test",
            mc_samples=samples,
            std=args.std,
            batch_size=args.eval_batch_size,
            episodes=args.eval_episodes,
            generator=generator,
            cluster=cluster,
        )
        cluster.say(format_table(test))
        results[f"test_mc{samples}"] = test.as_dict()
    final = results[f"test_mc{args.test_mc_samples}"]
    results.update(
        accuracy=final["accuracy"],
        ci95=final["ci95"],
        n=final["n"],
        epochs=history[-1]["epoch"] if history else 0,
        train_seconds=sum(h["seconds"] for h in history),
        params=n_params,
        world_size=cluster.world_size,
        **started_by(run_dir, command),
        config=config,
    )
    if cluster.is_main:
        write_json(run_dir / "results" / "test.json", results)
    writer.add_scalar("charts/test_accuracy", final["accuracy"], results["epochs"] * updates_per_epoch)
    writer.close()
    leave()
    cluster.say(
        f"test accuracy {final['accuracy']:.4f} (best val {best['best_val']:.4f} at epoch {best['epoch']})"
    )
    return results


if __name__ == "__main__":
    run_main(main, errors=(RunFolderError, CheckpointError, TrainingDiverged, ValueError))
