"""Stage 5: play Breakout inside the learned world model, with the keyboard.

    python play_neural_breakout.py [--fps 15] [--temperature 0] [--device auto]

Keys: SPACE fire, LEFT/RIGHT arrows move (hold to repeat), PERIOD noop (also when nothing is
held), R restart from a fresh real start, ESC or Q quit. Uses the weights in
checkpoints/pretrained/ unless --checkpoint_dir says otherwise. Needs a display; without one,
neural_random_game.py saves a GIF of the model playing instead."""
from __future__ import annotations

from dataclasses import dataclass

from models.cli import arg, check_positive, parse_config, run_main
from models.neural_env import CHECKPOINT_DIR_HELP, DEFAULT_CHECKPOINT_DIR, DEFAULT_MAX_EPISODE_STEPS, NeuralBreakoutEnv
from models.neural_game import Game
from models.runtime import pick_device


@dataclass
class PlayConfig:
    checkpoint_dir: str = arg(DEFAULT_CHECKPOINT_DIR, CHECKPOINT_DIR_HELP)
    fps: float = arg(15.0, "game steps per second; 15 is the original's pace (60 Hz, frame skip 4)")
    temperature: float = arg(0.0, "sampling temperature of latents and pixels; 0 takes the most likely")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    scale: int = arg(3, "the frame is shown this many times larger")
    seed: int = arg(0, "seed of the first real start (each restart adds one)")
    game: str = arg("Breakout", "Atari game whose emulator gives the real start frames")
    max_episode_steps: int = arg(DEFAULT_MAX_EPISODE_STEPS, "steps before the game restarts by itself")
    max_steps: int = arg(0, "quit after this many steps (0: play until ESC/Q)")

    def __post_init__(self) -> None:
        check_positive(self, "fps", "scale", "max_episode_steps")
        check_positive(self, "temperature", "seed", "max_steps", allow_zero=True)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(PlayConfig, __doc__.splitlines()[0], argv)
    env = NeuralBreakoutEnv(config.checkpoint_dir, device=pick_device(config.device), temperature=config.temperature,
                            max_episode_steps=config.max_episode_steps, game=config.game)
    game = Game(env, fps=config.fps, scale=config.scale, seed=config.seed)
    try:
        game.open()
        game.run(config.max_steps)
        print(f"played {game.total_steps} steps; the model took {game.step_ms:.1f} ms per step")
    finally:
        game.close()
        env.close()


if __name__ == "__main__":
    run_main(main)
