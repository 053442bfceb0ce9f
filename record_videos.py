"""Stage 1b: record gameplay, for people (MP4) and for training (episode files).

    python record_videos.py --checkpoint_path <ckpt> --output_dir videos/ --num_episodes 3
    python record_videos.py --bulk --total_videos 100 --percent_random 15 --output_dir bulk_videos

Single mode records ``--num_episodes`` games by the agent in ``--checkpoint_path`` (a random
player without one). Bulk mode records ``--total_videos`` games: ``--percent_random`` by a random
player, ``--percent_scripted`` by a scripted ball follower, the rest by the agent (by default the
one shipped in checkpoints/pretrained/). Games already in ``--output_dir`` are skipped."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from tqdm import tqdm

from models.atari import action_meanings
from models.cli import UserError, arg, check_positive, parse_config, run_main
from models.dqn import load_policy
from models.players import RANDOM_PLAYERS, SCRIPTED_PLAYERS, shipped_agent_path
from models.recording import (GameJob, Layout, RecordSettings, format_summary, is_recorded, parse_shard, plan_games,
                              record_games, scan_folder, shard_games, write_manifest_and_plot)
from models.runtime import pick_device


@dataclass
class RecordConfig:
    output_dir: str = arg("data", "folder for episodes/, videos/, frames/, manifest.json and scores.png", output="dir")
    checkpoint_path: str | None = arg(None, "DQN checkpoint of the agent (bulk mode: defaults to the shipped one)")
    game: str = arg("Breakout", "Atari game")
    num_episodes: int = arg(1, "games to record in single mode")
    bulk: bool = arg(False, "bulk mode: --total_videos games shared between random, scripted and agent players")
    total_videos: int = arg(100, "games to record in bulk mode")
    percent_random: float = arg(15.0, "bulk mode: percent of games played by a random player")
    random_player: Literal[RANDOM_PLAYERS] = arg("random", "the random player: uniform each step, or keys held 1-4 steps as a person tries the controls")
    percent_scripted: float = arg(0.0, "bulk mode: percent of games played by the scripted ball follower (Breakout)")
    action_noise: float = arg(0.01, "probability of a uniform random action at each step of agent and scripted games "
                                    "(the emulator and the agent are deterministic: at 0, every agent game is the same game)")
    max_steps: int = arg(10_000, "cap on agent steps per game (one step = 4 emulator frames)")
    seed: int = arg(0, "base seed: game i uses seed + i")
    workers: int = arg(1, "games recorded in parallel processes")
    shard: str = arg("0/1", "i/N: record only games i, i+N, i+2N... of the job (to split it between machines)")
    save_videos: bool = arg(True, "write an MP4 per game for people")
    save_frames: bool = arg(False, "also write a folder of numbered PNG frames per game")
    video_scale: int = arg(2, "MP4 frames are the game enlarged this many times")
    device: str = arg("auto", "device for the agent's network: auto (CUDA, else MPS, else CPU), cpu, cuda or mps")

    def __post_init__(self) -> None:
        check_positive(self, "num_episodes", "total_videos", "max_steps", "workers", "video_scale")
        check_positive(self, "percent_random", "percent_scripted", "action_noise", "seed", allow_zero=True)
        if self.percent_random + self.percent_scripted > 100:
            raise ValueError("--percent_random and --percent_scripted add up to more than 100")
        if self.action_noise > 1:
            raise ValueError(f"--action_noise is a probability (0 to 1), got {self.action_noise}")


def plan(config: RecordConfig) -> tuple[list[GameJob], str | None]:
    """Every game of the job and the agent checkpoint it needs (None when no game is the agent's)."""
    if config.bulk:
        percent_scripted = config.percent_scripted
        if percent_scripted and config.game not in SCRIPTED_PLAYERS:
            print(f"note: no scripted player for {config.game}: its {percent_scripted:g}% of the games go to the agent")
            percent_scripted = 0.0
        jobs = plan_games(config.total_videos, config.percent_random, percent_scripted, config.seed,
                          config.random_player)
    else:
        share_random = 0.0 if config.checkpoint_path else 100.0
        jobs = plan_games(config.num_episodes, share_random, 0.0, config.seed, config.random_player)
    if not any(job.player == "agent" for job in jobs):
        return jobs, None
    checkpoint = config.checkpoint_path or shipped_agent_path(config.game)
    if checkpoint is None:
        raise UserError(f"no agent for the agent games: give --checkpoint_path (none is shipped in "
                        f"checkpoints/pretrained/ for {config.game}), or set --percent_random and "
                        f"--percent_scripted to add up to 100")
    load_policy(checkpoint)  # a bad checkpoint fails here, in one line, before any game is played
    return jobs, str(checkpoint)


def main(argv: list[str] | None = None) -> None:
    config = parse_config(RecordConfig, __doc__.splitlines()[0], argv)
    shard = parse_shard(config.shard)
    names = action_meanings(config.game)
    jobs, checkpoint = plan(config)
    settings = RecordSettings(output_dir=config.output_dir, game=config.game, checkpoint_path=checkpoint,
                              device=str(pick_device(config.device)), max_steps=config.max_steps,
                              action_noise=config.action_noise, save_videos=config.save_videos,
                              save_frames=config.save_frames, video_scale=config.video_scale)
    layout = Layout(config.output_dir)
    mine = shard_games(jobs, shard)
    todo = [job for job in mine if not is_recorded(layout, job, settings, names)]
    if len(todo) < len(mine):
        print(f"{len(mine) - len(todo)} of this shard's {len(mine)} games are already in {layout.root}; skipping them")
    frames, start = 0, time.perf_counter()
    with tqdm(total=len(todo), unit="game", desc="recording") as bar:
        for game in record_games(todo, settings, names, config.workers):
            frames += game.num_steps + 1
            bar.set_postfix({"score": game.score, "player": game.player,
                             "frames/s": f"{frames / (time.perf_counter() - start):.0f}"})
            bar.update()
    summary = write_manifest_and_plot(layout, scan_folder(layout))
    print(format_summary(summary))
    print(f"manifest: {layout.manifest}  histogram: {layout.histogram}")


if __name__ == "__main__":
    run_main(main)
