"""Train the frame cleaner that repairs the world model's drawn frames in play (models/frame_cleaner.py).

    python train_frame_cleaner.py --data_dir data/episodes                 # from the shipped world model
    python train_frame_cleaner.py --data_dir data/episodes --resume        # continue after an interruption

Starts from the world model's decoder features, giving back the frame it is shown. Each batch holds
real frames damaged the way the model's errors look and the world model's own one-step frames, each
with the real frame as target. Writes {best,latest}.pt, metrics.csv and metrics.png to --output_dir;
exported as frame_cleaner.pt beside the world model, the neural game applies it after every step."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from models.breakout_damage import Palette
from models.checkpoint import load_checkpoint, load_state, save_checkpoint
from models.cli import RunFlags, arg, check_positive, parse_config, run_main
from models.episodes import list_episode_files
from models.frame_cleaner import STAGE, cleaner_batch, cleaner_from_world_model, evaluate, train_step
from models.frame_dataset import FramePool, PaletteIndexer, default_load_workers, fixed_windows, split_folders
from models.latent_action import load_latent_action_model
from models.neural_env import DEFAULT_CHECKPOINT_DIR, WORLD_MODEL_FILES, checkpoint_folder
from models.run_log import MetricsLog, plot_metrics
from models.runtime import pick_device, seed_everything, warmup_cosine
from models.training_loop import Progress, run_training

PLOT_KEYS = ["loss", "cleaned_exact", "drawn_exact", "damaged_repaired", "real_untouched", "paddle_4px_repaired", "lr"]


@dataclass
class CleanerTrainConfig(RunFlags):
    data_dir: list[str] = arg(["data/episodes"], "folders of recorded games (.npz); each is split by game 80/10/10")
    world_model: str = arg(f"{DEFAULT_CHECKPOINT_DIR}/{WORLD_MODEL_FILES[0]}", "the world model whose frames are cleaned")
    output_dir: str = arg("checkpoints/frame_cleaner", "where checkpoints and metrics go", output="dir")
    num_steps: int = arg(6000, "training steps")
    batch_size: int = arg(16, "windows per step")
    learning_rate: float = arg(1e-4, "Adam learning rate after warm-up; decays to a tenth along a cosine")
    warmup_steps: int = arg(50, "steps of linear learning-rate warm-up")
    damage_share: float = arg(0.5, "share of each batch whose frame to clean is a damaged real frame; the rest "
                                   "are the world model's own one-step frames")
    num_val_windows: int = arg(256, "validation windows, spread over the validation games")
    memory_mb: float = arg(1024.0, "memory for training frames; more games rotate through it")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "num_steps", "batch_size", "learning_rate", "num_val_windows", "memory_mb")
        check_positive(self, "warmup_steps", "damage_share", allow_zero=True)
        if self.damage_share > 1:
            raise ValueError(f"--damage_share is a share of the batch, 0 to 1; got {self.damage_share}")


PRESETS = {"tiny": dict(num_steps=4, batch_size=2, warmup_steps=1, eval_every=2, save_every=2, log_every=1,
                        num_val_windows=4)}


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(CleanerTrainConfig, __doc__.splitlines()[0], argv, presets=PRESETS)
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.output_dir)
    latest, best = out_dir / "latest.pt", out_dir / "best.pt"
    world = load_latent_action_model(checkpoint_folder(cfg.world_model), device)
    world.requires_grad_(False)
    palette = Palette.of(world.config.palette)
    split = split_folders([list_episode_files(d) for d in cfg.data_dir], seed=cfg.split_seed)

    cleaner = cleaner_from_world_model(world).train()
    optimizer = torch.optim.Adam(cleaner.parameters(), lr=cfg.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.num_steps))
    resumed = load_checkpoint(latest, stage=STAGE) if cfg.resume else None
    progress = Progress()
    if resumed:
        load_state(cleaner, resumed["model"], latest)
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        progress = Progress(resumed["step"], resumed.get("best_score", -math.inf))
    rng = seed_everything(cfg.seed + progress.step)

    indexer = PaletteIndexer(world.config.palette)
    c = world.config.context_frames
    pool = FramePool(split.train, indexer, c, steps=1, memory_mb=cfg.memory_mb, rng=rng,
                     load_workers=default_load_workers())
    val = fixed_windows(split.val, indexer, c, 1, cfg.num_val_windows, seed=cfg.split_seed)
    log = MetricsLog(out_dir / "metrics.csv", use_wandb=cfg.wandb, run_config=asdict(cfg),
                     resume_step=progress.step if resumed else None)
    print(f"{len(split.train)} training games ({pool.num_frames} frames in memory), {len(split.val)} validation; "
          f"{sum(p.numel() for p in cleaner.parameters()) / 1e6:.2f}M parameters on {device}")

    def save(path: Path, metrics: dict[str, float]) -> None:
        save_checkpoint(path, stage=STAGE, model=cleaner, config=world.config, step=progress.step, metrics=metrics,
                        run_config=asdict(cfg), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        best_score=progress.best_score)

    def train_one() -> tuple[float, dict[str, float]]:
        windows = pool.sample(cfg.batch_size)
        batch = cleaner_batch(world, windows.context, windows.future[:, 0], palette, cfg.damage_share, rng)
        loss, metrics = train_step(cleaner, optimizer, batch)
        metrics["lr"] = scheduler.get_last_lr()[0]
        scheduler.step()
        return loss, metrics

    metrics = run_training(
        progress, cfg.num_steps, cfg, out_dir, log, "frame cleaner", train_one,
        evaluate=lambda: evaluate(cleaner, world, val.context, val.future[:, 0], palette, seed=cfg.seed),
        score=lambda m: m["cleaned_exact"] + m["damaged_repaired"], save=save, shown="cleaned_exact")
    log.close()
    plot_metrics(out_dir / "metrics.csv", out_dir / "metrics.png", PLOT_KEYS, title="frame cleaner")
    print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    print(f"wrote {latest}; the best validation (exact cleaned + repaired frames) is in {best}")


if __name__ == "__main__":
    run_main(main)
