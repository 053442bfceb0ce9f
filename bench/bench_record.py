"""Benchmark of recording on this machine: frames per second recorded and written (episode file and
MP4) with one worker and with two, and where one worker's time goes.

    python -m bench.bench_record [--player scripted] [--num_games 4] [--max_steps 1000]

``--player agent`` plays an untrained Q-network: the same computation per step as a trained one."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from models.atari import action_meanings, make_rgb_env
from models.checkpoint import save_checkpoint
from models.dqn import QNetwork, QNetworkConfig
from models.episodes import save_episode
from models.players import PLAYER_KINDS, make_player
from models.recording import GameJob, RecordSettings, count_late_game_frames, play_game, record_games, write_video


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def breakdown(settings: RecordSettings, player_kind: str, names: list[str], folder: Path) -> None:
    """One game with one worker, stage by stage."""
    env = make_rgb_env(settings.game)
    player = make_player(player_kind, settings.game, names, settings.checkpoint_path)
    ep, play_s = timed(lambda: play_game(env, player, 0, settings.max_steps, settings.action_noise, len(names)))
    env.close()
    _, late_s = timed(lambda: count_late_game_frames(settings.game, ep.frames))
    _, video_s = timed(lambda: write_video(folder / "one.mp4", ep, names, settings.video_scale))
    _, save_s = timed(lambda: save_episode(folder / "one.npz", ep))
    frames = ep.num_steps + 1
    print(f"one {player_kind} game of {ep.num_steps} steps, one worker:")
    for label, seconds in (("play (emulator + player)", play_s), ("late-game count", late_s),
                           ("MP4 (caption + H.264)", video_s), ("episode file (.npz)", save_s)):
        print(f"  {label:26s} {seconds:6.2f} s  {frames / seconds:8.0f} frames/s")
    total = play_s + late_s + video_s + save_s
    print(f"  {'all':26s} {total:6.2f} s  {frames / total:8.0f} frames/s  "
          f"(.npz {(folder / 'one.npz').stat().st_size / frames / 1e3:.2f} kB/frame, "
          f"MP4 {(folder / 'one.mp4').stat().st_size / frames / 1e3:.2f} kB/frame)")


def throughput(settings: RecordSettings, player_kind: str, names: list[str], num_games: int, workers: int) -> None:
    jobs = [GameJob(index=i, player=player_kind, seed=i) for i in range(num_games)]
    start = time.perf_counter()
    frames = sum(game.num_steps + 1 for game in record_games(jobs, settings, names, workers))
    seconds = time.perf_counter() - start
    print(f"{workers} worker(s): {num_games} games, {frames} frames in {seconds:.1f} s = {frames / seconds:.0f} frames/s "
          f"(process start-up included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--player", choices=PLAYER_KINDS, default="scripted")
    parser.add_argument("--num_games", type=int, default=4, help="games per measurement")
    parser.add_argument("--max_steps", type=int, default=1000, help="cap on agent steps per game")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no_videos", action="store_true", help="measure without writing MP4s")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in each recording worker
    names = action_meanings("Breakout")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = None
        if args.player == "agent":
            checkpoint = str(folder / "untrained.pt")
            config = QNetworkConfig(num_actions=len(names))
            save_checkpoint(checkpoint, stage="dqn", model=QNetwork(config), config=config, step=0)
        breakdown(RecordSettings(output_dir=tmp, checkpoint_path=checkpoint, max_steps=args.max_steps),
                  args.player, names, folder)
        for workers in args.workers:
            settings = RecordSettings(output_dir=str(folder / f"w{workers}"), checkpoint_path=checkpoint,
                                      max_steps=args.max_steps, save_videos=not args.no_videos)
            throughput(settings, args.player, names, args.num_games, workers)


if __name__ == "__main__":
    main()
