"""Stage 5: a random player inside the learned world model, saved as a GIF.

    python neural_random_game.py [--steps 100] [--compare]

The game starts from real frames of a fresh emulator game and then runs on the model's own
frames. Writes data/neural_random_game.gif; with --compare, the same actions are also played in
the emulator from the same start, and real and neural frames are written side by side
(data/neural_random_game_compare.gif and .mp4)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from models import world_model_metrics as wm
from models.atari import make_rgb_env
from models.cli import arg, check_positive, parse_config, run_main
from models.neural_env import (ACTION_NAMES, CHECKPOINT_DIR_HELP, DEFAULT_CHECKPOINT_DIR, NeuralBreakoutEnv,
                               paired_rollout)
from models.neural_game import captioned, output_path, side_by_side, write_gif, write_mp4
from models.runtime import pick_device, seed_everything


@dataclass
class RandomGameConfig:
    checkpoint_dir: str = arg(DEFAULT_CHECKPOINT_DIR, CHECKPOINT_DIR_HELP)
    steps: int = arg(100, "game steps to play (one step = 4 emulator frames)")
    output: str = arg("data/neural_random_game.gif", "the GIF of the neural game; --compare adds "
                                                     "<name>_compare.gif and .mp4 beside it", output="file",
                      aliases=("output_path",))
    compare: bool = arg(False, "also play the same actions in the emulator and write both side by side")
    temperature: float = arg(0.0, "sampling temperature of latents and pixels; 0 takes the most likely")
    seed: int = arg(0, "seed of the real start, the random actions and the sampling")
    fps: float = arg(15.0, "frames per second of the GIF and MP4; 15 is the original game's pace")
    scale: int = arg(2, "the frames are written this many times larger")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    game: str = arg("Breakout", "Atari game whose emulator gives the real start frames")

    def __post_init__(self) -> None:
        check_positive(self, "steps", "fps", "scale")
        check_positive(self, "temperature", "seed", allow_zero=True)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(RandomGameConfig, __doc__.splitlines()[0], argv)
    rng = seed_everything(config.seed)
    env = NeuralBreakoutEnv(config.checkpoint_dir, device=pick_device(config.device), temperature=config.temperature,
                            max_episode_steps=config.steps, game=config.game)
    actions = rng.integers(0, len(ACTION_NAMES), size=config.steps)  # (S,)
    if config.compare:
        emulator = make_rgb_env(config.game)
        with tqdm(total=1, desc=f"playing {config.steps} steps in emulator and model") as bar:
            pair = paired_rollout(env, emulator, config.seed, actions)
            bar.update()
        emulator.close()
        neural = pair.neural
    else:
        env.reset(seed=config.seed)
        neural = np.stack([env.step(int(a))[0] for a in tqdm(actions, desc="neural game", unit="step")])  # (S, H, W, 3)
    env.close()
    write_gif(config.output, captioned(neural, actions, config.scale, "neural  "), config.fps)
    print(f"neural game: {config.output}")
    if config.compare:
        both = side_by_side(captioned(pair.real, actions, config.scale, "real  "),
                            captioned(pair.neural, actions, config.scale, "neural  "))
        for suffix, write in (("_compare.gif", write_gif), ("_compare.mp4", write_mp4)):
            write(output_path(config.output, suffix), both, config.fps)
        print(f"real | neural: {output_path(config.output, '_compare.gif')} and {output_path(config.output, '_compare.mp4')}")
        print(f"paddle error {wm.paddle_error(pair.neural, pair.real):.1f} px, ball presence agrees in "
              f"{wm.ball_presence_accuracy(pair.neural, pair.real):.0%} of steps, "
              f"PSNR {wm.psnr(pair.neural, pair.real):.1f} dB over {config.steps} steps")


if __name__ == "__main__":
    run_main(main)
