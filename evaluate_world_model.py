"""Evaluate the world model against the emulator: closed-loop play, or in lockstep from real start states.

    python evaluate_world_model.py --closed_loop     # 16 games x 1,000 steps of a ball-following player, neural vs real
    python evaluate_world_model.py [--checkpoint_dir checkpoints/pretrained] [--steps 100] [--num_starts 8]
    python evaluate_world_model.py --episodes_dir data/episodes      # start from held-out recorded games
    python evaluate_world_model.py --episodes_dir data/episodes --latents encoder   # the same starts, the encoder's codes

The model and the real game start from the same real frames and get the same actions; the model
runs open loop on its own frames. Reported beside copying the last frame: PSNR at steps 1, 5, 20
and 100, pixel-exact frames, paddle and ball position error, ball presence agreement; also
controllability (holding LEFT or RIGHT moves the neural paddle the emulator's way), Genie's
ΔPSNR at t = 4 and the model's steps per second. Writes report.json, psnr.png, paddle_error.png,
ball_recall.png and first_start.mp4 (real | neural | difference) to --output_dir.

With --closed_loop a ball-following player plays the neural game on its own frames and, apart, the
emulator, from the same real mid-game starts (``models.closed_loop``); also with the encoder's codes
of a lockstep emulator (an oracle map), and one step from damaged frames. Writes report.json,
closed_loop.png, and closed_loop.mp4 and .gif (emulator | neural, the first game) to --output_dir."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from models import closed_loop as cl
from models import world_model_evaluation as ev
from models.atari import make_rgb_env
from models.cli import UserError, arg, check_positive, parse_config, run_main
from models.episodes import list_episode_files
from models.files import atomic_write
from models.frame_dataset import split_games
from models.neural_env import CHECKPOINT_DIR_HELP, DEFAULT_CHECKPOINT_DIR, NeuralBreakoutEnv
from models.neural_game import captioned, side_by_side, write_gif, write_mp4
from models.players import SCRIPTED_PLAYERS
from models.runtime import pick_device, seed_everything


@dataclass
class EvaluateConfig:
    checkpoint_dir: str = arg(DEFAULT_CHECKPOINT_DIR, CHECKPOINT_DIR_HELP)
    output_dir: str = arg("data/evaluation", "folder for report.json, the PNG plots and first_start.mp4", output="dir")
    closed_loop: bool = arg(False, "closed-loop play by a ball-following player instead of the open-loop comparison")
    steps: int | None = arg(None, "game steps per game (one step = 4 emulator frames); default 100 open loop, "
                                  "1000 closed loop")
    num_starts: int | None = arg(None, "real start states (games; controllability uses as many); default 8 open "
                                       "loop, 16 closed loop")
    oracle: bool = arg(True, "closed loop: also play the neural game on the encoder's codes of a lockstep emulator")
    repair_steps: int = arg(200, "closed loop: real steps tried with each kind of damage to the last frame (0: none)")
    clean_frames: bool = arg(True, "apply the frame cleaner (frame_cleaner.pt) when the checkpoint folder has one")
    object_priors: bool = arg(True, "Breakout: draw the paddle, bricks and ball as whole objects (models/object_priors.py); "
                                    "off: each pixel's most likely colour, the decoder alone")
    control_steps: int = arg(4, "controllability: game steps LEFT or RIGHT is held")
    episodes_dir: str = arg("", "recorded games (.npz): start from random steps of their test split, play "
                                "the recorded actions and compare with the recorded frames; empty: fresh "
                                "seeded emulator games and a random player")
    split_seed: int = arg(0, "seed of the train/val/test split of --episodes_dir (train_latent_action.py's)")
    latents: str = arg("map", "where each step's latent action comes from: map (the action map, as in play) or "
                              "encoder (with --episodes_dir: the encoder's codes of the recorded frames, an oracle "
                              "map; what error is left is the world model's own; controllability still uses the map)")
    temperature: float = arg(0.0, "sampling temperature of latents and pixels; 0 takes the most likely")
    seed: int = arg(0, "seed of the start states, the random player and the sampling")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    game: str = arg("Breakout", "Atari game of the emulator")
    fps: float = arg(15.0, "frames per second of the MP4; 15 is the original game's pace")
    scale: int = arg(2, "the MP4's frames are this many times larger")

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = 1000 if self.closed_loop else 100
        if self.num_starts is None:
            self.num_starts = 16 if self.closed_loop else 8
        check_positive(self, "steps", "num_starts", "control_steps", "fps", "scale")
        check_positive(self, "repair_steps", allow_zero=True)
        check_positive(self, "temperature", "seed", "split_seed", allow_zero=True)
        if self.latents not in ("map", "encoder"):
            raise ValueError(f"--latents must be map or encoder, got {self.latents!r}")
        if self.latents == "encoder" and not self.episodes_dir:
            raise ValueError("--latents encoder reads the codes from recorded frames: give --episodes_dir")
        if self.closed_loop and (self.episodes_dir or self.latents != "map"):
            raise ValueError("--closed_loop plays from emulator starts with the map (and the oracle): "
                             "drop --episodes_dir and --latents")


PRESETS = {"quick": {"steps": 20}}


def write_video(path: Path, rollouts: ev.Rollouts, scale: int, fps: float) -> None:
    """The first game: real | neural | difference (white where they differ), captioned."""
    real, neural, actions = rollouts.real[0], rollouts.neural[0], rollouts.actions[0]
    panels = [captioned(frames, actions, scale, title) for frames, title in
              ((real, "real  "), (neural, "neural  "), (ev.difference_frames(real, neural), "differ  "))]
    write_mp4(path, side_by_side(side_by_side(panels[0], panels[1]), panels[2]), fps)


def write_side_by_side(path: Path, result: cl.ClosedLoop, scale: int, fps: float) -> None:
    """The first game, emulator | neural, captioned, as an MP4 or a GIF (by the file's suffix)."""
    games = ((result.first_games["emulator"], "emulator  "), (result.first_games["neural"], "neural  "))
    panels = [captioned(g.frames[1:], g.actions, scale, title) for g, title in games]
    n = min(len(p) for p in panels)
    (write_gif if path.suffix == ".gif" else write_mp4)(path, side_by_side(panels[0][:n], panels[1][:n]), fps)


def closed_loop(config: EvaluateConfig, env: NeuralBreakoutEnv) -> None:
    """--closed_loop: play, write report.json, closed_loop.png and closed_loop.mp4, print the table."""
    if config.game not in SCRIPTED_PLAYERS:
        raise UserError(f"--closed_loop plays a ball follower that knows only {', '.join(SCRIPTED_PLAYERS)}, "
                        f"not {config.game}")
    settings = cl.ClosedLoopSettings(num_games=config.num_starts, steps=config.steps, seed=cl.START_SEED + config.seed,
                                     oracle=config.oracle, repair_steps=config.repair_steps)
    emulator = make_rgb_env(config.game)
    try:
        result = cl.run_closed_loop(env, emulator, settings)
    finally:
        emulator.close()
    summary = result.summary()
    out = Path(config.output_dir)
    body = ev.json_safe({"settings": {**dataclasses.asdict(config), "device": str(env.device),
                                      "frame_cleaner": env.cleaner is not None},
                         "checkpoints": ev.checkpoint_files(config.checkpoint_dir), "starts": result.starts,
                         "summary": summary, "games": cl.stats_table(result), "notes": cl.__doc__})
    text = json.dumps(body, indent=1)
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(text))
    cl.plot_closed_loop(out / "closed_loop.png", summary, config.steps)
    write_side_by_side(out / "closed_loop.mp4", result, config.scale, config.fps)
    write_side_by_side(out / "closed_loop.gif", result, 1, config.fps)
    print(cl.format_summary(summary))
    print(f"wrote {out / 'report.json'}, closed_loop.png, .mp4 and .gif ({result.starts[0]}: emulator | neural, "
          f"each played by the follower on its own frames)")


def main(argv: list[str] | None = None) -> None:
    config = parse_config(EvaluateConfig, __doc__.splitlines()[0], argv, presets=PRESETS)
    rng = seed_everything(config.seed)
    episode_files = split_games(list_episode_files(config.episodes_dir), seed=config.split_seed).test \
        if config.episodes_dir else None
    env = NeuralBreakoutEnv(config.checkpoint_dir, device=pick_device(config.device), temperature=config.temperature,
                            game=config.game, clean_frames=config.clean_frames, object_priors=config.object_priors)
    settings = ev.EvaluationSettings(steps=config.steps, num_starts=config.num_starts,
                                     control_steps=config.control_steps, seed=config.seed, game=config.game,
                                     episode_files=episode_files, latents=config.latents)
    try:
        if config.closed_loop:
            closed_loop(config, env)
            return
        evaluation = ev.evaluate(env, settings, rng)
    finally:
        env.close()
    out = Path(config.output_dir)
    body = ev.report(evaluation, {**dataclasses.asdict(config), "device": str(env.device)},
                     ev.checkpoint_files(config.checkpoint_dir))
    text = json.dumps(body, indent=1)
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(text))
    plots = ev.write_plots(out, evaluation.curves)
    write_video(out / "first_start.mp4", evaluation.rollouts, config.scale, config.fps)
    print(ev.format_table(evaluation))
    print(f"wrote {out / 'report.json'}, {', '.join(p.name for p in plots)} and first_start.mp4 "
          f"({evaluation.rollouts.starts[0]}: real | neural | difference)")


if __name__ == "__main__":
    run_main(main)
