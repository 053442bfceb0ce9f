"""Recording games: who plays which game, one game from reset to its end, and everything written
for it (episode file for training, MP4 and PNGs for people), a folder's manifest and score plot.

Game ``i`` of a job uses seed ``base_seed + i`` and a player fixed by ``i`` alone, so shards and
reruns agree on every game. The emulator (no sticky actions) and a greedy agent are both
deterministic, so only random actions (``action_noise``) make one agent game differ from the next. Each game's files are written to temporary names and renamed; the
episode file comes last and marks the game as done, so a rerun skips exactly the finished games."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import imageio_ffmpeg
import numpy as np
import torch

from models.atari import FRAME_SKIP, env_id, make_rgb_env
from models.breakout_objects import NUM_BRICKS, bricks_remaining
from models.cli import UserError
from models.episodes import Episode, load_episode, read_episode_metadata, save_episode, write_manifest
from models.figures import pyplot, save_figure
from models.files import atomic_write
from models.players import RANDOM_PLAYERS, Player, make_player

VIDEO_FPS = 30
REPEAT_ACTION_PROBABILITY = 0.0   # every recorded action is exactly what moved the game
# Settings a rerun must share with the games already on disk for them to count as done.
_MATCHING_KEYS = ("game", "player", "checkpoint", "seed", "max_steps", "action_noise")


def _breakout_late_frames(frames: np.ndarray) -> np.ndarray:
    return bricks_remaining(frames) < NUM_BRICKS / 2


# Per game, which frames show the late game (the coverage the world model needs most).
LATE_GAME = {"Breakout": _breakout_late_frames}


@dataclass(frozen=True)
class GameJob:
    index: int    # global game number: names the files, so shards never collide
    player: str   # "random", "scripted" or "agent"
    seed: int


@dataclass(frozen=True)
class RecordSettings:
    """What every game of one recording run shares."""

    output_dir: str
    game: str = "Breakout"
    checkpoint_path: str | None = None
    device: str = "cpu"
    max_steps: int = 10_000
    action_noise: float = 0.0
    save_videos: bool = True
    save_frames: bool = False
    video_scale: int = 2


@dataclass(frozen=True)
class GameSummary:
    """One manifest row."""

    index: int
    file: str
    player: str
    checkpoint: str | None
    seed: int
    num_steps: int
    score: float
    truncated: bool
    late_game_frames: int | None   # frames with fewer than half the bricks left (None: no such measure)
    actions_sha1: str              # the hash of the game's actions: equal hashes, (almost surely) the same game


class Layout:
    """Where a recording folder keeps each kind of file."""

    def __init__(self, output_dir: str | os.PathLike):
        self.root = Path(output_dir)
        self.episodes = self.root / "episodes"
        self.manifest = self.root / "manifest.json"
        self.histogram = self.root / "scores.png"

    @staticmethod
    def name(index: int) -> str:
        return f"game_{index:05d}"

    def episode(self, index: int) -> Path:
        return self.episodes / f"{self.name(index)}.npz"

    def video(self, index: int) -> Path:
        return self.root / "videos" / f"{self.name(index)}.mp4"

    def frames_dir(self, index: int) -> Path:
        return self.root / "frames" / self.name(index)


def plan_games(num_games: int, percent_random: float, percent_scripted: float, base_seed: int,
               random_player: str = "random") -> list[GameJob]:
    """All games of a job: the random (played by ``random_player``) and scripted shares rounded to whole
    games, the rest for the agent, shuffled with ``base_seed`` so each kind is spread over the whole
    index range."""
    num_random = round(num_games * percent_random / 100)
    num_scripted = min(round(num_games * percent_scripted / 100), num_games - num_random)
    kinds = [random_player] * num_random + ["scripted"] * num_scripted + ["agent"] * (num_games - num_random - num_scripted)
    order = np.random.default_rng(base_seed).permutation(num_games)
    return [GameJob(index=i, player=kinds[order[i]], seed=base_seed + i) for i in range(num_games)]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like i/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise UserError(f"--shard {text}: need N >= 1 and 0 <= i < N")
    return index, count


def shard_games(jobs: list[GameJob], shard: tuple[int, int]) -> list[GameJob]:
    """The games of shard i of N: every N-th game, starting at game i."""
    index, count = shard
    return [job for job in jobs if job.index % count == index]


def game_metadata(job: GameJob, settings: RecordSettings, action_names: list[str]) -> dict[str, Any]:
    return {
        "index": job.index, "player": job.player, "seed": job.seed, "game": settings.game,
        "env_id": env_id(settings.game), "frame_skip": FRAME_SKIP,
        "repeat_action_probability": REPEAT_ACTION_PROBABILITY, "max_steps": settings.max_steps,
        "action_noise": settings.action_noise if job.player not in RANDOM_PLAYERS else 0.0,
        "checkpoint": settings.checkpoint_path if job.player == "agent" else None,
        "action_meanings": action_names,
    }


def play_game(env: Any, player: Player, seed: int, max_steps: int, action_noise: float,
              num_actions: int) -> Episode:
    """One game from reset until it ends or reaches ``max_steps`` agent steps.

    With probability ``action_noise`` a step takes a uniform random action instead of the player's,
    so the data holds moves the player would not choose; the player is told what was really done."""
    rng = np.random.default_rng(seed)
    frame, info = env.reset(seed=seed)
    # Filled lazily by the OS: a 10,000-step cap costs memory only for the steps played.
    frames = np.empty((max_steps + 1, *frame.shape), np.uint8)
    frames[0] = frame
    actions, rewards, lives, terminated = [], [], [int(info.get("lives", 0))], []
    player.reset()
    action = None
    for t in range(max_steps):
        action = player.act(frame, action, rng)
        if action_noise > 0 and rng.random() < action_noise:
            action = int(rng.integers(num_actions))
        frame, reward, done, _, info = env.step(action)
        frames[t + 1] = frame
        actions.append(action)
        rewards.append(reward)
        lives.append(int(info.get("lives", 0)))
        terminated.append(done)
        if done:
            break
    steps = len(actions)
    return Episode(frames=frames[:steps + 1], actions=np.asarray(actions, np.uint8),
                   rewards=np.asarray(rewards, np.float32), lives=np.asarray(lives, np.uint8),
                   terminated=np.asarray(terminated, bool))


def count_late_game_frames(game: str, frames: np.ndarray, chunk: int = 1024) -> int | None:
    """How many frames show the late game (Breakout: fewer than half the bricks), or None when the
    game has no such measure."""
    is_late = LATE_GAME.get(game)
    if is_late is None:
        return None
    return int(sum(is_late(frames[i:i + chunk]).sum() for i in range(0, len(frames), chunk)))


def annotate(frame: np.ndarray, lines: list[str], scale: int) -> np.ndarray:
    """The frame enlarged ``scale`` times (nearest neighbour) above a black strip holding ``lines``:
    the text never covers the game itself."""
    big = cv2.resize(frame, (frame.shape[1] * scale, frame.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    line_height = 10 * scale
    strip = np.zeros((line_height * len(lines) + 4 * scale, big.shape[1], 3), np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(strip, text, (3 * scale, line_height * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.33 * scale,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([big, strip], axis=0)


def captions(ep: Episode, action_names: list[str]) -> Iterator[list[str]]:
    """Text under each frame t: its number, the action that led to it, the score and lives so far."""
    scores = np.concatenate([[0.0], np.cumsum(ep.rewards, dtype=np.float64)])
    for t in range(ep.num_steps + 1):
        action = action_names[ep.actions[t - 1]] if t > 0 else "-"
        yield [f"frame {t}/{ep.num_steps}  score {scores[t]:g}", f"action {action}  lives {ep.lives[t]}"]


def write_video(path: Path, ep: Episode, action_names: list[str], scale: int) -> None:
    """An H.264 MP4 at 30 fps with one video frame per recorded frame, captioned below the game."""
    pictures = (annotate(frame, lines, scale) for frame, lines in zip(ep.frames, captions(ep, action_names)))
    first = next(pictures)

    def write(tmp: str) -> None:
        # imageio_ffmpeg directly, because the temporary name has no .mp4 ending to guess from
        writer = imageio_ffmpeg.write_frames(tmp, (first.shape[1], first.shape[0]), fps=VIDEO_FPS,
                                             macro_block_size=1, output_params=["-f", "mp4", "-preset", "veryfast"],
                                             ffmpeg_log_level="error")
        writer.send(None)
        try:
            writer.send(first)
            for picture in pictures:
                writer.send(picture)
        finally:
            writer.close()

    atomic_write(path, write)


def write_png_frames(directory: Path, frames: np.ndarray) -> None:
    """A folder of numbered RGB PNGs (``000000.png``...), built under a temporary name and renamed."""
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for t, frame in enumerate(frames):
        cv2.imwrite(str(tmp / f"{t:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))  # cv2 writes BGR
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def actions_sha1(actions: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(actions, np.uint8).tobytes()).hexdigest()


def summary_from_metadata(meta: dict[str, Any], path: Path) -> GameSummary:
    """One manifest row from an episode file's metadata (games recorded before the actions' hash was
    kept get it from the file's actions)."""
    digest = meta.get("actions_sha1") or actions_sha1(load_episode(path).actions)
    return GameSummary(index=meta["index"], file=path.name, player=meta["player"], checkpoint=meta.get("checkpoint"),
                       seed=meta["seed"], num_steps=meta["num_steps"], score=meta["score"],
                       truncated=meta["truncated"], late_game_frames=meta.get("late_game_frames"), actions_sha1=digest)


def is_recorded(layout: Layout, job: GameJob, settings: RecordSettings, action_names: list[str]) -> bool:
    """Whether every file asked for already exists for this game. A game on disk recorded with other
    settings (another player, seed or checkpoint) is refused rather than silently kept or replaced."""
    path = layout.episode(job.index)
    if not path.is_file():
        return False
    meta = read_episode_metadata(path)
    wanted = game_metadata(job, settings, action_names)
    for key in _MATCHING_KEYS:
        if meta.get(key) != wanted[key]:
            raise UserError(f"{path} was recorded with {key}={meta.get(key)!r}, this run asks for {wanted[key]!r}: "
                            f"record into another --output_dir or delete the folder")
    return (not settings.save_videos or layout.video(job.index).is_file()) and \
        (not settings.save_frames or layout.frames_dir(job.index).is_dir())


class Recorder:
    """Plays and writes games in one process, keeping one emulator and one player of each kind."""

    def __init__(self, settings: RecordSettings, action_names: list[str]):
        self.settings = settings
        self.action_names = action_names
        self.layout = Layout(settings.output_dir)
        self.env = make_rgb_env(settings.game, repeat_action_probability=REPEAT_ACTION_PROBABILITY)
        self.players: dict[str, Player] = {}

    def player(self, kind: str) -> Player:
        if kind not in self.players:
            s = self.settings
            self.players[kind] = make_player(kind, s.game, self.action_names, s.checkpoint_path, s.device)
        return self.players[kind]

    def record(self, job: GameJob) -> GameSummary:
        s, layout = self.settings, self.layout
        noise = s.action_noise if job.player not in RANDOM_PLAYERS else 0.0
        ep = play_game(self.env, self.player(job.player), job.seed, s.max_steps, noise, len(self.action_names))
        ep.metadata = {**game_metadata(job, s, self.action_names), "score": ep.score, "num_steps": ep.num_steps,
                       "truncated": not bool(ep.terminated[-1]), "actions_sha1": actions_sha1(ep.actions),
                       "late_game_frames": count_late_game_frames(s.game, ep.frames)}
        if s.save_videos:
            write_video(layout.video(job.index), ep, self.action_names, s.video_scale)
        if s.save_frames:
            write_png_frames(layout.frames_dir(job.index), ep.frames)
        save_episode(layout.episode(job.index), ep)   # last: its presence means the game is done
        return summary_from_metadata(ep.metadata, layout.episode(job.index))

    def close(self) -> None:
        self.env.close()


_worker_recorder: Recorder | None = None


def _start_worker(settings: RecordSettings, action_names: list[str]) -> None:
    global _worker_recorder
    torch.set_num_threads(1)
    _worker_recorder = Recorder(settings, action_names)


def _record_in_worker(job: GameJob) -> GameSummary:
    assert _worker_recorder is not None
    return _worker_recorder.record(job)


def record_games(jobs: list[GameJob], settings: RecordSettings, action_names: list[str],
                 workers: int = 1) -> Iterator[GameSummary]:
    """Record ``jobs``, yielding each game's summary as it finishes (in any order with workers > 1).

    Workers are separate processes (spawned, so CUDA and torch threads start clean), each with its
    own emulator and players and one torch thread."""
    if not jobs:
        return
    if workers <= 1 or len(jobs) == 1:
        torch.set_num_threads(1)
        recorder = Recorder(settings, action_names)
        try:
            yield from map(recorder.record, jobs)
        finally:
            recorder.close()
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), initializer=_start_worker, initargs=(settings, action_names)) as pool:
        yield from pool.imap_unordered(_record_in_worker, jobs)


def scan_folder(layout: Layout) -> list[GameSummary]:
    """One summary per episode file in the folder (from all runs and shards), by game index."""
    if not layout.episodes.is_dir():
        return []
    paths = sorted(p for p in layout.episodes.glob("*.npz") if not p.name.startswith("."))
    return [summary_from_metadata(read_episode_metadata(p), p) for p in paths]


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "p25": float(np.percentile(values, 25)), "median": float(np.median(values)),
            "p75": float(np.percentile(values, 75)), "max": float(values.max())}


def summarize(games: list[GameSummary]) -> dict[str, Any]:
    """Score and length distributions, overall and per player, how many of the games differ (by their
    actions), and the share of recorded frames showing the late game (the coverage the world model needs)."""
    if not games:
        return {"num_games": 0}
    scores = np.array([g.score for g in games])
    lengths = np.array([g.num_steps for g in games])
    frames = int((lengths + 1).sum())
    late = [g.late_game_frames for g in games]
    by_player = {}
    for kind in sorted({g.player for g in games}):
        mine = [g for g in games if g.player == kind]
        by_player[kind] = {"num_games": len(mine), "num_distinct_games": len({g.actions_sha1 for g in mine}),
                           "score": _stats(np.array([g.score for g in mine])),
                           "num_steps": _stats(np.array([g.num_steps for g in mine]))}
    return {
        "num_games": len(games), "num_distinct_games": len({g.actions_sha1 for g in games}), "num_frames": frames,
        "score": _stats(scores), "num_steps": _stats(lengths),
        "num_truncated": sum(g.truncated for g in games),
        "late_game_frame_share": None if None in late else sum(late) / frames,  # type: ignore[arg-type]
        "by_player": by_player,
    }


def write_manifest_and_plot(layout: Layout, games: list[GameSummary]) -> dict[str, Any]:
    """The folder's manifest (summary + one row per game) and a PNG histogram of scores and lengths."""
    summary = summarize(games)
    write_manifest(layout.manifest, [asdict(g) for g in games], summary)
    if games:
        plot_histograms(layout.histogram, games)
    return summary


def plot_histograms(path: Path, games: list[GameSummary]) -> None:
    plt = pyplot()

    kinds = sorted({g.player for g in games})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, value, label in ((axes[0], lambda g: g.score, "score"),
                             (axes[1], lambda g: g.num_steps, "length (agent steps)")):
        data = [[value(g) for g in games if g.player == k] for k in kinds]
        ax.hist(data, bins=20, stacked=True, label=kinds)
        ax.set_xlabel(label)
        ax.set_ylabel("games")
        ax.grid(alpha=0.3)
    axes[0].legend(title="player")
    fig.suptitle(f"{len(games)} recorded games")
    fig.tight_layout()
    save_figure(fig, path)


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    if not summary["num_games"]:
        return "no games recorded"
    s = summary["score"]
    lines = [f"{summary['num_games']} games ({summary['num_distinct_games']} distinct), {summary['num_frames']} frames; "
             f"score mean {s['mean']:.1f} "
             f"(min {s['min']:g}, median {s['median']:g}, max {s['max']:g})"]
    for kind, stats in summary["by_player"].items():
        k = stats["score"]
        lines.append(f"  {kind:8s} {stats['num_games']:4d} games ({stats['num_distinct_games']} distinct)  score mean {k['mean']:.1f}  median {k['median']:g}  "
                     f"max {k['max']:g}  mean length {stats['num_steps']['mean']:.0f} steps")
    if summary["late_game_frame_share"] is not None:
        lines.append(f"frames with fewer than half the bricks left: {100 * summary['late_game_frame_share']:.1f}%")
    return "\n".join(lines)
