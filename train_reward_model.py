"""Train the reward-and-end model that gives the neural game its rewards, lives and game over (models/reward_model.py).

    python train_reward_model.py --data_dir data/play/episodes data/hold_new/episodes
    python train_reward_model.py --data_dir data/episodes --resume        # continue after an interruption

Learns from recorded games (their rewards and lives counters, and where the ball leaves their
frames), each folder split by game 80/10/10 as every stage splits it. Writes {best,latest}.pt,
metrics.csv and metrics.png to --output_dir and, at the end, the best model's figures on the
held-out test games; copied as reward_model.pt beside the world model, the neural game reports
rewards, lives and game over."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from models.checkpoint import load_checkpoint, load_state, save_checkpoint
from models.cli import RunFlags, arg, check_positive, parse_config, run_main
from models.episodes import list_episode_files, load_episode, recorded_game
from models.frame_dataset import split_folders
from models.reward_model import (STAGE, RewardModel, RewardModelConfig, event_steps, evaluate, fit_delay_table,
                                 game_steps, load_reward_model, sample_batch, train_step)
from models.run_log import MetricsLog, plot_metrics
from models.runtime import pick_device, seed_everything, warmup_cosine
from models.scoreboard import DIGIT_ROWS, GlyphReader
from models.training_loop import Progress, run_training

PLOT_KEYS = ["loss", "reward_recall", "reward_precision", "reward_class_accuracy", "life_recall", "life_precision",
             "game_over_right", "life_recall_1_late", "game_over_1_off"]
TARGETS = ("reward_recall", "reward_precision", "reward_class_accuracy", "life_recall", "life_precision",
           "game_over_right", "life_recall_1_late", "game_over_1_off")


@dataclass
class RewardTrainConfig(RunFlags):
    data_dir: list[str] = arg(["data/episodes"], "folders of recorded games (.npz); each is split by game 80/10/10")
    output_dir: str = arg("checkpoints/reward_model", "where checkpoints and metrics go", output="dir")
    num_steps: int = arg(24000, "training steps")
    batch_size: int = arg(64, "steps per training batch")
    learning_rate: float = arg(1e-3, "Adam learning rate; decays to a tenth along a cosine")
    event_share: float = arg(0.5, "share of each batch drawn near a reward or where the ball goes out of view")
    mirror: bool = arg(True, "flip half the training windows left to right")
    context_frames: int = arg(6, "frames before the step's next frame that the model sees")
    pool: int = arg(2, "max-pool of the lit frames (px)")
    channels: list[int] = arg([16, 32, 32], "channels of the strided convolutions")
    hidden: int = arg(128, "width of the hidden layer")
    objects: bool = arg(True, "give the model the ball's and the paddle's places to the pixel beside the lit frames")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "num_steps", "batch_size", "learning_rate", "context_frames", "pool", "hidden")
        check_positive(self, "event_share", allow_zero=True)
        if self.event_share > 1:
            raise ValueError(f"--event_share is a share of the batch, 0 to 1; got {self.event_share}")


PRESETS = {"tiny": dict(num_steps=4, batch_size=4, channels=[4, 4], hidden=8, eval_every=2, save_every=2, log_every=1)}


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(RewardTrainConfig, __doc__.splitlines()[0], argv, presets=PRESETS)
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.output_dir)
    latest, best = out_dir / "latest.pt", out_dir / "best.pt"
    folders = [list_episode_files(d) for d in cfg.data_dir]
    split = split_folders(folders, seed=cfg.split_seed)
    first = load_episode(split.train[0])
    model_cfg = RewardModelConfig(context_frames=cfg.context_frames, pool=cfg.pool, channels=cfg.channels,
                                  hidden=cfg.hidden, objects=cfg.objects, height=first.frames.shape[1],
                                  width=first.frames.shape[2], start_lives=int(first.lives[0]),
                                  game=recorded_game([f for files in folders for f in files]) or "Breakout")

    def read(files: list[Path], digits: GlyphReader | None = None) -> list:
        """The games' steps; with ``digits``, each game's digits counted too."""
        games = []
        for f in tqdm(files, desc="reading games", leave=False):
            episode = load_episode(f)
            games.append(game_steps(episode, model_cfg, str(f)))
            if digits is not None:
                digits.add(episode.frames[:, :DIGIT_ROWS[1]], episode.rewards, episode.lives)
        return games

    digits = GlyphReader()
    train, val = read(split.train, digits), read(split.val)
    events = [event_steps(g, model_cfg.exit_lag) for g in train]
    model_cfg.delay_table = fit_delay_table(train, model_cfg.max_delay)
    model_cfg.digit_glyphs = digits.glyphs()
    resumed = load_checkpoint(latest, stage=STAGE) if cfg.resume else None
    progress = Progress()
    rng = seed_everything(cfg.seed)
    model = RewardModel(model_cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    if resumed:
        load_state(model, resumed["model"], latest)
        optimizer.load_state_dict(resumed["optimizer"])
        progress = Progress(resumed["step"], resumed.get("best_score", -math.inf))
        rng = seed_everything(cfg.seed + progress.step)

    log = MetricsLog(out_dir / "metrics.csv", use_wandb=cfg.wandb, run_config=asdict(cfg),
                     resume_step=progress.step if resumed else None)
    print(f"{len(train)} training games ({sum(len(g.reward_class) for g in train)} steps), {len(val)} validation; "
          f"{sum(p.numel() for p in model.parameters()) / 1e3:.1f}k parameters on {device}; "
          f"{len(model_cfg.delay_table)} keys of the ball's last sightings in the delay table; "
          f"{'all 10 digits read' if model_cfg.digit_glyphs else 'digits not read: the world model draws them'}")

    def save(path: Path, metrics: dict[str, float]) -> None:
        save_checkpoint(path, stage=STAGE, model=model, config=model_cfg, step=progress.step, metrics=metrics,
                        run_config=asdict(cfg), optimizer=optimizer.state_dict(), best_score=progress.best_score,
                        game=model_cfg.game)

    def train_one() -> tuple[float, dict[str, float]]:
        lr = cfg.learning_rate * warmup_cosine(progress.step, 0, cfg.num_steps)   # from the step: resumes as it was
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = sample_batch(train, events, model_cfg, cfg.batch_size, cfg.event_share, rng, cfg.mirror)
        loss, metrics = train_step(model, optimizer, batch.to(device))
        return loss, {**metrics, "lr": lr}

    metrics = run_training(progress, cfg.num_steps, cfg, out_dir, log, "reward model", train_one,
                           evaluate=lambda: evaluate(model, val), score=lambda m: sum(m[k] for k in TARGETS),
                           save=save, shown="reward_recall")
    test = evaluate(load_reward_model(best, device), read(split.test))
    log.log(progress.step, {f"test_{k}": v for k, v in test.items()})
    log.close()
    plot_metrics(out_dir / "metrics.csv", out_dir / "metrics.png", PLOT_KEYS, title="reward model")
    print("validation: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    print(f"held-out test games ({best}): " + ", ".join(f"{k} {v:.4g}" for k, v in test.items()))
    print(f"wrote {latest}; copy {best} to the checkpoint folder as reward_model.pt for the neural game")


if __name__ == "__main__":
    run_main(main)
