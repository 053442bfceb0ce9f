"""Stage 4b: train the map from real actions (and the frames before them) to the world model's latent actions.

    python train_action_to_latent.py                          # action + state, all pairs
    python train_action_to_latent.py --variant action         # the action alone, as the original's MLP
    python train_action_to_latent.py --max_pairs 1000         # how far do 1,000 labelled steps go?
                                                              # (the other pairs' codes still teach the state)
    python train_action_to_latent.py --sweep                  # accuracy against 100, 1k, 10k, all pairs
    python train_action_to_latent.py --pairs_path data/actions/action_latent_pairs.json \
        data/actions_hold/action_latent_pairs.json            # pairs of several collections together

Reads data/actions/action_latent_pairs.json and its context archive (collect_action_latent_pairs.py),
holds out 20% of the games, and writes checkpoints/latent_action/action_to_latent_best.pt (the weights
with the best validation accuracy), with action_to_latent_metrics.csv, _curves.png, _confusion.png,
_sweep.csv and _sweep.png beside it. When the world model the pairs came from is present, also checks
end to end that the frame it predicts from the mapped latent equals the one from the encoder's latent."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from models.action_pairs import concat_pairs, read_pairs
from models.action_to_latent import (MAX_STATE_FRAMES, STAGE, ActionToLatentConfig, PairTensors, TrainSettings,
                                     action_only_ceiling, end_to_end, end_to_end_steps, evaluate_mapper,
                                     labelled_subset, mapper_config, plot_confusion, split_pairs, train_mapper,
                                     write_sweep)
from models.checkpoint import save_checkpoint
from models.cli import UserError, arg, check_positive, parse_config, run_main
from models.latent_action import load_latent_action_model
from models.neural_env import ACTION_MEMORY
from models.run_log import MetricsLog, plot_metrics
from models.runtime import pick_device, seed_everything


@dataclass
class TrainConfig:
    pairs_path: list[str] = arg(["data/actions/action_latent_pairs.json"],
                                "pairs from collect_action_latent_pairs.py (several: used together, games kept apart)")
    output_path: str = arg("checkpoints/latent_action/action_to_latent_best.pt", "best checkpoint; reports go beside it",
                           output="file")
    variant: Literal["action", "action_state"] = arg("action_state", "action: the action alone; action_state: the action and the last frames")
    num_steps: int = arg(12000, "gradient steps (the same for any number of pairs)")
    batch_size: int = arg(256, "pairs per gradient step")
    learning_rate: float = arg(1e-3, "Adam learning rate")
    eval_every: int = arg(250, "gradient steps between validation scores")
    num_val: int = arg(5000, "validation pairs scored during training (all of them at the end)")
    val_fraction: float = arg(0.2, "share of the games held out for validation")
    labelled_fraction: float = arg(1.0, "train on this share of the training pairs (0-1]")
    max_pairs: int = arg(0, "train on at most this many labelled pairs (0: no limit)")
    state_frames: int = arg(4, f"action_state: last frames the state net sees (at most {MAX_STATE_FRAMES}; "
                                   "more than the world model's context: the game keeps them)")
    state_pool: list[int] = arg([5, 4], "action_state: rows and columns averaged into one cell of the state")
    state_channels: list[int] = arg([16, 32, 64], "action_state: conv widths (each halves the grid)")
    hidden: int = arg(128, "action_state: width of the hidden layer")
    action_history: int = arg(8, "action_state: earlier actions the state net also sees (Breakout's paddle answers late)")
    unlabelled: bool = arg(True, "action_state: training pairs left out by --max_pairs or --labelled_fraction still "
                                 "teach the state through their codes, their actions unused")
    offset_penalty: float = arg(0.1, "with unlabelled pairs: weight of the mean square of the actions' logit offsets "
                                     "from the state's own code distribution (keeps a few labels from overruling it)")
    temperature: float = arg(0.0, "sampling temperature when scoring (0: most likely code)")
    sweep: bool = arg(False, "also train on 100, 1,000, 10,000 and all pairs and plot accuracy against that")
    sweep_sizes: list[int] = arg([100, 1000, 10000, 0], "labelled pairs of each sweep run (0: all)")
    sweep_variants: list[str] = arg(["action", "action_state"], "variants the sweep trains (action_state also "
                                    "with the unlabelled pairs, unless --no-unlabelled)")
    latent_checkpoint: str = arg("", "world model for the end-to-end check (default: the one the pairs came from; skipped if absent)")
    num_e2e: int = arg(1000, "validation steps of the end-to-end check (0: skip it)")
    game: str = arg("Breakout", "Atari game; pairs collected from another game are refused")
    seed: int = arg(0, "seed of the split, the subset and the training")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    wandb: bool = arg(False, "also log to Weights & Biases")

    def __post_init__(self) -> None:
        check_positive(self, "num_steps", "batch_size", "eval_every", "num_val", "state_frames", "hidden", "learning_rate")
        check_positive(self, "max_pairs", "num_e2e", "seed", "threads", "temperature", "action_history",
                       "offset_penalty", allow_zero=True)
        if self.action_history > ACTION_MEMORY:
            raise ValueError(f"--action_history must be at most {ACTION_MEMORY}, the earlier actions the game keeps, "
                             f"got {self.action_history}")
        if self.state_frames > MAX_STATE_FRAMES:
            raise ValueError(f"--state_frames must be at most {MAX_STATE_FRAMES}, got {self.state_frames}")
        if len(set(self.pairs_path)) < len(self.pairs_path):
            raise ValueError(f"--pairs_path lists a file more than once: {self.pairs_path}")
        if not 0 < self.labelled_fraction <= 1:
            raise ValueError(f"--labelled_fraction must lie in (0, 1], got {self.labelled_fraction}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"--val_fraction must lie in (0, 1), got {self.val_fraction}")
        if any(s < 0 for s in self.sweep_sizes):
            raise ValueError(f"--sweep_sizes must be zero (all) or positive, got {self.sweep_sizes}")
        if unknown := set(self.sweep_variants) - {"action", "action_state"}:
            raise ValueError(f"--sweep_variants: unknown variant(s) {sorted(unknown)}")


PRESETS = {"quick": dict(num_steps=400, eval_every=100, num_val=2000, num_e2e=200, sweep_sizes=[100, 1000, 0])}
CURVES = ["loss", "train_accuracy", "val_loss", "accuracy", "step_accuracy"]


def build_config(cfg: TrainConfig, variant: str, pairs, marginal: bool = False) -> ActionToLatentConfig:
    """The map's config; a choice the pairs cannot serve becomes a UserError."""
    try:
        return mapper_config(variant, pairs, state_frames=cfg.state_frames, state_pool=cfg.state_pool, state_channels=cfg.state_channels, hidden=cfg.hidden,
                             action_history=cfg.action_history, marginal=marginal)
    except ValueError as exc:
        raise UserError(f"{' '.join(cfg.pairs_path)}: {exc}") from exc


def unlabelled_pairs(cfg: TrainConfig, variant: str, train: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """The training pairs whose codes, not actions, the map learns from (none for the action-only map)."""
    if not cfg.unlabelled or variant != "action_state":
        return np.zeros(0, np.int64)
    return np.setdiff1d(train, labelled)


def settings_of(cfg: TrainConfig) -> TrainSettings:
    return TrainSettings(num_steps=cfg.num_steps, batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
                         eval_every=cfg.eval_every, num_val=cfg.num_val, offset_penalty=cfg.offset_penalty,
                         seed=cfg.seed)


def train_one(cfg: TrainConfig, mcfg: ActionToLatentConfig, data: PairTensors, train_idx, val_idx, device,
              desc: str, log: MetricsLog | None = None, unlabelled_idx: np.ndarray | None = None):
    bar = tqdm(total=cfg.num_steps, desc=desc, unit="step", dynamic_ncols=True, leave=False)
    on_eval = None if log is None else (lambda step, metrics: log.log(step, metrics))
    result = train_mapper(mcfg, data, train_idx, val_idx, settings_of(cfg), device, on_eval=on_eval, progress=bar,
                          unlabelled_idx=unlabelled_idx)
    bar.close()
    return result


def run_sweep(cfg: TrainConfig, pairs, split, device, prefix: Path) -> None:
    """Each variant on 100, 1,000, ... labelled pairs; action_state once on those alone and, with
    --unlabelled, once more with the rest of the training pairs unlabelled."""
    rows = []
    sizes = sorted({min(s or split.train.size, split.train.size) for s in cfg.sweep_sizes})
    recipes = [(v, False) for v in cfg.sweep_variants]
    if cfg.unlabelled and "action_state" in cfg.sweep_variants:
        recipes.append(("action_state", True))
    for variant, with_unlabelled in recipes:
        name = variant + ("+unlabelled" if with_unlabelled else "")
        data = PairTensors(pairs, build_config(cfg, variant, pairs))
        for size in sizes:
            subset = labelled_subset(split.train, size, cfg.seed)
            unlabelled = unlabelled_pairs(cfg, variant, split.train, subset) if with_unlabelled \
                else np.zeros(0, np.int64)
            if with_unlabelled and unlabelled.size == 0:
                continue                                   # every pair labelled: the plain run already did it
            mcfg = build_config(cfg, variant, pairs, marginal=unlabelled.size > 0)
            result = train_one(cfg, mcfg, data, subset, split.val, device, f"sweep {name} {size} pairs",
                               unlabelled_idx=unlabelled)
            ev = evaluate_mapper(result.mapper, data, split.val, cfg.temperature, cfg.seed)
            rows.append({"variant": name, "labelled_pairs": int(subset.size), "unlabelled_pairs": int(unlabelled.size),
                         "accuracy": ev.metrics["accuracy"], "step_accuracy": ev.metrics["step_accuracy"],
                         "best_step": result.best_step})
            tqdm.write(f"sweep: {name:<23} {subset.size:>7} labelled pairs -> validation accuracy "
                       f"{ev.metrics['accuracy']:.2%} (whole step {ev.metrics['step_accuracy']:.2%})")
    write_sweep(f"{prefix}_sweep.csv", f"{prefix}_sweep.png", rows)


def pairs_world_model(cfg: TrainConfig, pairs, device) -> tuple[Any, str]:
    """The world model the pairs came from (or --latent_checkpoint) and its path; None when the
    pairs' own is absent (an explicit path must exist)."""
    path = cfg.latent_checkpoint or pairs.metadata.get("latent_checkpoint", "")
    if not path or (not Path(path).is_file() and not cfg.latent_checkpoint):
        return None, path
    world = load_latent_action_model(path, device)
    if world.config.context_frames != pairs.metadata["context_frames"]:
        raise UserError(f"world model {path} takes {world.config.context_frames} context frames, but the pairs "
                        f"were collected with {pairs.metadata['context_frames']}")
    return world, path


def maybe_end_to_end(cfg: TrainConfig, world, mapper, pairs, val_idx) -> dict[str, float]:
    """The end-to-end check through the world model, when it is present."""
    if cfg.num_e2e == 0 or world is None:
        return {}
    idx = end_to_end_steps(val_idx, cfg.num_e2e, cfg.seed)
    with tqdm(total=idx.size, desc="end to end", unit="step", dynamic_ncols=True, leave=False) as bar:
        return end_to_end(mapper, world, pairs, idx, progress=bar)


def main() -> None:
    cfg = parse_config(TrainConfig, __doc__.splitlines()[0], presets=PRESETS)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    pairs = concat_pairs([read_pairs(path) for path in cfg.pairs_path], cfg.pairs_path)
    if pairs.metadata.get("game", cfg.game) != cfg.game:
        raise UserError(f"{' '.join(cfg.pairs_path)} was collected from {pairs.metadata['game']}, not {cfg.game} "
                        "(see --game)")
    world, world_path = pairs_world_model(cfg, pairs, device) if cfg.num_e2e else (None, "")
    if world is None and world_path:
        print(f"end-to-end check skipped: world model {world_path} not found (give --latent_checkpoint)")
    split = split_pairs(pairs.game_index, cfg.val_fraction, cfg.seed)
    wanted = max(1, round(cfg.labelled_fraction * split.train.size))
    train_idx = labelled_subset(split.train, min(wanted, cfg.max_pairs or wanted), cfg.seed)
    unlabelled = unlabelled_pairs(cfg, cfg.variant, split.train, train_idx)
    mcfg = build_config(cfg, cfg.variant, pairs, marginal=unlabelled.size > 0)
    ceiling = action_only_ceiling(pairs.actions[train_idx], pairs.codes[train_idx], pairs.actions[split.val],
                                  pairs.codes[split.val], mcfg.num_actions, mcfg.num_codes)
    out = Path(cfg.output_path)
    prefix = out.parent / out.stem.removesuffix("_best")
    print(f"{len(pairs)} pairs: training on {train_idx.size} labelled (of {split.train.size}"
          + (f"; the other {unlabelled.size} unlabelled" if unlabelled.size else "")
          + f"), validating on {split.val.size}; variant {cfg.variant}")

    data = PairTensors(pairs, mcfg)
    log = MetricsLog(f"{prefix}_metrics.csv", use_wandb=cfg.wandb, run_config=asdict(cfg))
    result = train_one(cfg, mcfg, data, train_idx, split.val, device, f"train {cfg.variant}", log, unlabelled)
    ev = evaluate_mapper(result.mapper, data, split.val, cfg.temperature, cfg.seed)
    metrics = dict(ev.metrics, labelled_pairs=float(train_idx.size), unlabelled_pairs=float(unlabelled.size),
                   best_step=float(result.best_step), action_only_ceiling=ceiling)
    metrics.update(maybe_end_to_end(cfg, world, result.mapper, pairs, split.val))
    save_checkpoint(out, stage=STAGE, model=result.mapper, config=mcfg, step=result.best_step, metrics=metrics)
    if e2e := {k: v for k, v in metrics.items() if k.startswith("e2e_")}:
        log.log(cfg.num_steps + 1, e2e)
    log.close()
    plot_metrics(f"{prefix}_metrics.csv", f"{prefix}_curves.png", CURVES, title=f"action to latent ({cfg.variant})")
    plot_confusion(f"{prefix}_confusion.png", ev, mcfg.action_meanings, mcfg.num_codes,
                   title=f"{cfg.variant}: validation accuracy {ev.metrics['accuracy']:.1%}")
    print(" ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    print(f"wrote {out}")
    if cfg.sweep:
        run_sweep(cfg, pairs, split, device, prefix)
        print(f"wrote {prefix}_sweep.csv and {prefix}_sweep.png")


if __name__ == "__main__":
    run_main(main)
