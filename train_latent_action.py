"""Stages 2-3: train the latent action model (a VQ-VAE) whose decoder is the world model.

Reads recorded games (data/episodes/*.npz), never their action labels, splits them by game into
train / validation / test (80/10/10), and trains the encoder, codebook and decoder together.

    python train_latent_action.py                        # the default model
    python train_latent_action.py --preset quick         # a couple of minutes on a CPU
    python train_latent_action.py --preset original      # the original project's shape, to compare
    python train_latent_action.py --preset gpu           # the shipped model's run (batch 64, 20,000 steps)
    torchrun --nproc_per_node=2 train_latent_action.py   # data parallel (gloo on CPU, NCCL on GPU)

Writes checkpoints/latent_action/{best,latest}.pt, metrics.csv, metrics.png and samples.png."""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import imageio.v3 as iio
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from models.checkpoint import CheckpointError, config_from_checkpoint, load_checkpoint, load_state, save_checkpoint
from models.cli import arg, check_positive, parse_config, run_main
from models.episodes import list_episode_files, recorded_game
from models.frame_dataset import (FramePool, PaletteIndexer, default_load_workers, fixed_windows, palette_from_games,
                                  split_folders)
from models.latent_action import (MODEL_PRESETS, ROLLOUT_STEPS, STAGE, LatentActionConfig, LatentActionModel, evaluate,
                                  check_train_batch, grow_codebook, model_config, open_loop_step, train_step)
from models.run_log import MetricsLog, plot_metrics
from models.runtime import pick_device, seed_everything, warmup_cosine
from models.world_model_metrics import comparison_sheet

PALETTE_GAMES = 32  # training games read to find the palette
PLOT_KEYS = ["loss", "recon_loss", "val_loss", "psnr", "copy_psnr", "pixel_exact", "changed_accuracy",
             "paddle_error_px", "ball_error_px", "codebook_usage", "codebook_perplexity", "delta_psnr_t4", "lr",
             "last_step_loss"]


@dataclass
class TrainConfig:
    data_dir: list[str] = arg(["data/episodes"], "folders of recorded games (.npz episode files); each folder is "
                              "split by game on its own, so adding one keeps the others' held-out games out")
    checkpoint_dir: str = arg("checkpoints/latent_action", "where checkpoints, metrics and samples go",
                              aliases=("output_dir",), output="dir")
    model: str = arg("default", f"model shape: {', '.join(MODEL_PRESETS)}")
    context_frames: int | None = arg(None, "frames of context (default: the model shape's)")
    num_codes: int | None = arg(None, "codebook size (default: the model shape's)")
    latent_grid: list[int] | None = arg(None, "rows and columns of latent codes (default: the model shape's)")
    iterations: int = arg(16000, "training steps", aliases=("num_steps",))
    batch_size: int = arg(8, "windows per step and process")
    learning_rate: float = arg(2e-3, "Adam learning rate after warm-up; decays to a tenth along a cosine")
    warmup_steps: int = arg(100, "steps of linear learning-rate warm-up")
    reset_every: int = arg(200, "steps between resets of unused codes (0: never)")
    eval_every: int = arg(1000, "steps between validations (and best.pt updates)")
    save_every: int = arg(500, "steps between writes of latest.pt")
    log_every: int = arg(25, "steps between rows of training metrics")
    num_val_windows: int = arg(256, "validation windows, spread over the validation games")
    memory_mb: float = arg(1024.0, "memory for training frames per process; more games rotate through it")
    split_seed: int = arg(0, "seed of the train/val/test split of the games (keep it fixed across stages)")
    seed: int = arg(0, "seed of the weights and the sampling")
    device: str = arg("auto", "auto, cpu, cuda or mps")
    threads: int = arg(0, "torch CPU threads per process (0: $OMP_NUM_THREADS, else the cores divided among the processes)")
    resume: bool = arg(False, "continue from latest.pt in --checkpoint_dir")
    init_from: str = arg("", "start a fresh run (new optimizer, step 0) from this checkpoint's weights; a larger "
                             "--num_codes grows its codebook (ignored with --resume)")
    decoder_only: bool = arg(False, "train the world model alone: the encoder and codebook keep the weights of "
                                    "--init_from, so stage 4's pairs and map keep their meaning (no code resets)")
    rollout_steps: int = arg(1, "with --decoder_only: train on this many steps run open loop, as in play: after "
                                "the first, the decoder's context holds the frames it drew, and each step's target "
                                "is the real frame (1: one step from real frames)")
    wandb: bool = arg(False, "also log to Weights & Biases")

    def __post_init__(self) -> None:
        if self.model not in MODEL_PRESETS:
            raise ValueError(f"--model must be one of {', '.join(MODEL_PRESETS)}, got {self.model!r}")
        check_positive(self, "iterations", "batch_size", "learning_rate", "eval_every", "save_every", "log_every",
                       "num_val_windows", "memory_mb", "rollout_steps")
        check_positive(self, "warmup_steps", "reset_every", "threads", allow_zero=True)
        check_train_batch(self.batch_size)
        if self.decoder_only and not (self.init_from or self.resume):
            raise ValueError("--decoder_only trains the decoder of a trained model: give --init_from")
        if self.rollout_steps > 1 and not self.decoder_only:
            raise ValueError("--rollout_steps above 1 trains the decoder alone: give --decoder_only")


PRESETS = {
    "quick": dict(model="quick", iterations=300, batch_size=8, eval_every=100, save_every=100, log_every=10,
                  num_val_windows=64, reset_every=50),
    "original": dict(model="original"),
    # The shipped model's run: 20,000 steps of 64 windows, about 17 minutes on one H100.
    "gpu": dict(iterations=20000, batch_size=64, memory_mb=2048.0, save_every=250),
    "tiny": dict(model="tiny", iterations=6, batch_size=2, warmup_steps=2, eval_every=3, save_every=3,
                 log_every=1, num_val_windows=4, reset_every=2),
}


@dataclass
class Process:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_process(cfg: TrainConfig) -> Process:
    """One process, or one of torchrun's (its environment names the rank): gloo on CPU, NCCL on GPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif "OMP_NUM_THREADS" not in os.environ:  # torchrun sets it; so may the user
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    if world_size == 1:
        return Process(0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Process(dist.get_rank(), world_size, device)


def build_model_config(cfg: TrainConfig, train_files: list[Path]) -> LatentActionConfig:
    sample = train_files[:: max(1, len(train_files) // PALETTE_GAMES)][:PALETTE_GAMES]
    return model_config(cfg.model, palette_from_games(sample), context_frames=cfg.context_frames,
                        num_codes=cfg.num_codes, latent_grid=cfg.latent_grid)


def stored_model_config(cfg: TrainConfig, payload: dict, path: Path, grow: bool = False) -> LatentActionConfig:
    """The checkpoint's model config, refusing flags that ask for a different model; with ``grow``,
    --num_codes may differ (``grow_codebook`` grows the codebook when the weights are loaded and
    refuses to shrink it)."""
    stored = config_from_checkpoint(payload, LatentActionConfig, path)
    if grow and cfg.num_codes is not None:
        stored = replace(stored, num_codes=cfg.num_codes)
    asked = model_config(cfg.model, stored.palette, context_frames=cfg.context_frames, num_codes=cfg.num_codes,
                         latent_grid=cfg.latent_grid)
    if asked != stored:
        raise CheckpointError(f"checkpoint {path} holds a different model than --model {cfg.model} with these flags; "
                              "give the flags it was trained with")
    return stored


def initial_model(cfg: TrainConfig, train_files: list[Path]) -> tuple[LatentActionConfig, dict | None]:
    """A fresh run's model config, and the weights to start from (None: random). A decoder-only run
    may not grow the codebook: the frozen encoder would pick the new, untrained codes."""
    if not cfg.init_from:
        return build_model_config(cfg, train_files), None
    payload = load_checkpoint(cfg.init_from, stage=STAGE)
    model_cfg = stored_model_config(cfg, payload, Path(cfg.init_from), grow=not cfg.decoder_only)
    return model_cfg, grow_codebook(payload["model"], model_cfg.num_codes)


def main() -> None:
    cfg = parse_config(TrainConfig, __doc__.splitlines()[0], presets=PRESETS)
    proc = start_process(cfg)
    out_dir = Path(cfg.checkpoint_dir)
    latest, best = out_dir / "latest.pt", out_dir / "best.pt"

    split = split_folders([list_episode_files(d) for d in cfg.data_dir], seed=cfg.split_seed)
    # Every game's metadata, read now: a corrupt file is named before any training, and the game is
    # stored with the weights (the neural game refuses another)
    game = recorded_game(split.train + split.val + split.test)
    resumed = load_checkpoint(latest, stage=STAGE) if cfg.resume else None
    if resumed:
        model_cfg, initial = stored_model_config(cfg, resumed, latest), None
        decoder_only = resumed.get("run_config", {}).get("decoder_only", False)
        if decoder_only != cfg.decoder_only:
            raise CheckpointError(f"checkpoint {latest} was trained {'with' if decoder_only else 'without'} "
                                  "--decoder_only; resume it the same way")
    else:
        model_cfg, initial = initial_model(cfg, split.train)
    step = resumed["step"] if resumed else 0
    rng = seed_everything(cfg.seed + 1000 * proc.rank + step)

    model = LatentActionModel(model_cfg).to(proc.device)
    if initial is not None:
        load_state(model, initial, cfg.init_from)
    if cfg.decoder_only:
        model.freeze_latent_actions()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.iterations))
    best_val = math.inf
    if resumed:
        load_state(model, resumed["model"], latest)
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        best_val = resumed.get("best_val_loss", math.inf)
    net = DistributedDataParallel(model) if proc.world_size > 1 else model

    indexer = PaletteIndexer(model_cfg.palette)
    shard = split.train[proc.rank::proc.world_size] if len(split.train) >= proc.world_size else split.train
    pool = FramePool(shard, indexer, model_cfg.context_frames, steps=cfg.rollout_steps, memory_mb=cfg.memory_mb, rng=rng,
                     load_workers=default_load_workers(proc.world_size))
    val = fixed_windows(split.val, indexer, model_cfg.context_frames, ROLLOUT_STEPS, cfg.num_val_windows,
                        seed=cfg.split_seed) if proc.is_main else None
    log = MetricsLog(out_dir / "metrics.csv", use_wandb=cfg.wandb, run_config=asdict(cfg),
                     resume_step=step if resumed else None) if proc.is_main else None
    if proc.is_main:
        print(f"{len(split.train)} training games ({pool.num_frames} frames in memory per process), "
              f"{len(split.val)} validation, {len(split.test)} test; {len(model_cfg.palette)} colours; "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters; {proc.world_size} process(es) "
              f"on {proc.device}")

    def save(path: Path, metrics: dict[str, float]) -> None:
        save_checkpoint(path, stage=STAGE, model=model, config=model_cfg, step=step, metrics=metrics,
                        run_config=asdict(cfg), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        best_val_loss=best_val, game=game)

    def validate() -> dict[str, float]:
        nonlocal best_val
        result = evaluate(model, val, seed=cfg.seed)
        log.log(step, result.metrics)
        sheet = comparison_sheet(result.context, result.truth, result.prediction, rows=6)
        iio.imwrite(out_dir / "samples.png", sheet)
        if result.metrics["val_loss"] < best_val:
            best_val = result.metrics["val_loss"]
            save(best, result.metrics)
        return result.metrics

    metrics: dict[str, float] = {}
    reset_generator = torch.Generator().manual_seed(cfg.seed + proc.rank)
    bar = tqdm(total=cfg.iterations, initial=step, disable=not proc.is_main, desc="latent action")
    while step < cfg.iterations:
        batch = pool.sample(cfg.batch_size)
        context = torch.from_numpy(batch.context).to(proc.device)    # (B, C, H, W) palette indices
        future = torch.from_numpy(batch.future).to(proc.device)      # (B, S, H, W)
        if cfg.rollout_steps > 1:
            loss, train_metrics = open_loop_step(net, optimizer, context, future)
        else:
            reset = cfg.reset_every > 0 and (step + 1) % cfg.reset_every == 0 and not cfg.decoder_only
            loss, train_metrics = train_step(net, optimizer, context, future[:, 0], reset_codes=reset,
                                             generator=reset_generator)
        scheduler.step()
        step += 1
        bar.update(1)
        if not proc.is_main:
            continue
        if step % cfg.log_every == 0:
            log.log(step, {**train_metrics, "lr": scheduler.get_last_lr()[0]})
            bar.set_postfix(loss=f"{loss:.4f}", psnr=f"{metrics.get('psnr', math.nan):.1f}")
        if step % cfg.eval_every == 0 or step == cfg.iterations:
            metrics = validate()
        if step % cfg.save_every == 0 or step == cfg.iterations:
            save(latest, metrics)
    bar.close()

    if proc.is_main:
        if not metrics:  # resumed at the end: nothing trained, still report
            metrics = validate()
        log.close()
        plot_metrics(out_dir / "metrics.csv", out_dir / "metrics.png", PLOT_KEYS, title="latent action model")
        print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        kept = f"; the lowest validation loss, {best_val:.4g}, is in {best}" if best.exists() else "; no validation loss was finite, so no best.pt"
        print(f"wrote {latest}{kept}")
    if proc.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    run_main(main)
