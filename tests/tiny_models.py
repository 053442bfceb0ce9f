"""Tiny, randomly initialised shipped-style checkpoints (world model and mapper) for the tests of
the neural environment and the programs built on it."""
from __future__ import annotations

from pathlib import Path

import torch

from models.action_to_latent import ActionToLatent, ActionToLatentConfig
from models.atari import make_rgb_env
from models.checkpoint import save_checkpoint
from models.frame_dataset import palette_from_frames
from models.latent_action import LatentActionModel, model_config
from models.neural_env import ACTION_NAMES, real_start


def write_tiny_checkpoints(directory: Path, num_codes: int | None = None) -> Path:
    """A tiny random world model (palette from real frames) and a tiny state-aware mapper for it, saved
    as the shipped files; ``num_codes`` gives the mapper another codebook size (a mismatch)."""
    directory.mkdir(parents=True, exist_ok=True)
    emulator = make_rgb_env()
    frames = real_start(emulator, 6, seed=0)
    emulator.close()
    torch.manual_seed(0)
    world = LatentActionModel(model_config("tiny", palette_from_frames([frames])))
    save_checkpoint(directory / "latent_action.pt", stage="latent_action", model=world, config=world.config, step=0)
    cfg = world.config
    mapper_cfg = ActionToLatentConfig(variant="action_state", num_latents=cfg.num_latents,
                                      num_codes=num_codes or cfg.num_codes, context_frames=cfg.context_frames,
                                      state_frames=2, state_channels=[4, 8], hidden=16,
                                      action_meanings=list(ACTION_NAMES), game="Breakout")
    save_checkpoint(directory / "action_to_latent.pt", stage="action_to_latent", model=ActionToLatent(mapper_cfg),
                    config=mapper_cfg, step=0)
    return directory


def write_fixed_reward_model(path: Path, reward_class: int, exit_delay: int = -1) -> Path:
    """A tiny reward model that says the same about every step (``exit_delay`` -1: the ball never
    leaves; 0: it leaves and a life is counted at once): its last layer is all bias."""
    from models.reward_model import STAGE, TINY_CONFIG, RewardModel, RewardModelConfig

    model = RewardModel(RewardModelConfig(**TINY_CONFIG))
    last = model.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-10.0)
        last.bias[reward_class] = 10.0
        last.bias[len(model.config.reward_values) + 1 + exit_delay] = 10.0
    save_checkpoint(path, stage=STAGE, model=model, config=model.config, step=0)
    return path


def write_ball_reward_model(path: Path) -> Path:
    """A tiny reward model that reads the objects' places and gives 1 point on each step whose next
    frame shows the ball, and never sees the ball leave: one hidden unit reads that frame's ball flag."""
    from models.reward_model import STAGE, TINY_CONFIG, RewardModel, RewardModelConfig

    model = RewardModel(RewardModelConfig(objects=True, **TINY_CONFIG))
    first, last = model.head[0], model.head[-1]
    newest_ball_flag = first.in_features - 8 + 4          # place_features: 4 places, then 4 flags, per frame
    with torch.no_grad():
        for layer in (first, last):
            layer.weight.zero_()
            layer.bias.zero_()
        first.weight[0, newest_ball_flag] = 20.0
        last.weight[1, 0] = 1.0
        last.bias[1] = -10.0                                   # 1 point where the flag is set
        last.bias[len(model.config.reward_values)] = 10.0     # "no exit"
    save_checkpoint(path, stage=STAGE, model=model, config=model.config, step=0)
    return path


def tiny_with_rewards(folder: Path, tiny_dir: Path, reward_class: int, exit_delay: int) -> Path:
    """The tiny world model and mapper with a reward model that says the same about every step."""
    from models.neural_env import REWARD_FILE

    folder.mkdir(exist_ok=True)
    for name in ("latent_action.pt", "action_to_latent.pt"):
        (folder / name).write_bytes((tiny_dir / name).read_bytes())
    write_fixed_reward_model(folder / REWARD_FILE, reward_class, exit_delay)
    return folder
