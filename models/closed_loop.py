"""Closed-loop play: the figure that decides whether the neural game can be played.

A ball-following player (``BreakoutFollower`` with a little jitter) reads only the frames of the game
it plays. From the same real mid-game starts (emulator games the follower has played for a few
hundred steps, with seeds no recording used in training has) it plays, for S steps each:
- ``emulator``: the real game, on its own frames;
- ``neural``: the neural game, on its own frames, each step's latent action from the action map;
- ``oracle``: the neural game on its own frames, each step's latent action the encoder's code of the
  step a lockstep emulator makes with the same actions (an oracle map): what still goes wrong is
  the world model's own.
The games are not in lockstep with one another; what must match is how the game behaves, read from
the pixels of every frame (``game_stats``), beside the points each game's own counter gave (the
emulator's score; the neural game's reward model, when its folder has one). ``repair_trials``
measures one step from real frames whose last frame was damaged (``models.breakout_damage``): does
the next frame come out whole?
``one_step_stats`` explains the figures: one step from the emulator games' real frames, with the
encoder's code, how often is the ball drawn exactly as the real frame shows it?"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from models import breakout_objects as objects
from models.action_pairs import encode_game
from models.breakout_damage import Palette, erase_paddle_end, remove_ball, shift_paddle, stray_ball
from models.figures import pyplot, save_figure
from models.frame_dataset import PaletteIndexer
from models.latent_action import LatentActionModel
from models.neural_env import ACTION_MEMORY, NeuralBreakoutEnv
from models.players import BreakoutFollower

FOLLOWER_JITTER = 0.05    # share of the follower's moves replaced by a random one
START_STEPS = (100, 500)  # a start is this many follower steps into a real game (drawn per start)
START_SEED = 20_000       # far from the seeds of every recording the shipped models were trained on
COLLAPSE_RUN = 10         # a paddle missing or malformed this many steps in a row has collapsed
STILL_STEPS = 4           # a shown ball in the same place this many frames in a row stands still
SERVE_GAP = 2             # a ball shown after at least this many ball-less frames was served
HIT_ROW = 150             # a falling ball that turns upward below this row ...
HIT_REACH_PX = 12         # ... with the paddle's centre this near its column, was hit by the paddle
SIDES = ("emulator", "neural", "oracle")
EVENTS = ("bricks", "points", "counted_points", "paddle_hits", "balls_lost", "serves")
FRAME_SHARES = ("ball_shown", "paddle_whole", "one_ball")
REPAIRS = ("paddle_erase_4px", "paddle_shift_3px", "stray_ball", "missing_ball")
REPAIR_SHIFT_PX = 3


# ------------------------------------------------------------------------------- starts

@dataclass
class PlayStart:
    """A real mid-game start: the emulator's state and what led to it."""
    seed: int
    steps_in: int          # follower steps played before the start
    frames: np.ndarray     # (M, H, W, 3) uint8, the last frames, oldest first
    actions: list[int]     # the ACTION_MEMORY actions before, oldest first
    state: Any             # the emulator's state at the last frame (ale.cloneState())


def follower(emulator: gym.Env, jitter: float = FOLLOWER_JITTER) -> BreakoutFollower:
    return BreakoutFollower(list(emulator.unwrapped.get_action_meanings()), jitter=jitter)


def play_start(emulator: gym.Env, seed: int, steps_in: int, keep_frames: int) -> PlayStart:
    """The follower plays ``steps_in`` steps of the emulator's game ``seed`` (fewer if the game ends
    before: half as many, until it does not)."""
    while True:
        player, rng = follower(emulator), np.random.default_rng(seed)
        frame, _ = emulator.reset(seed=seed)
        frames, actions, prev, over = deque([frame], maxlen=keep_frames), deque(maxlen=ACTION_MEMORY), None, False
        for _ in range(steps_in):
            prev = player.act(frame, prev, rng)
            frame, _, terminated, truncated, _ = emulator.step(prev)
            frames.append(frame)
            actions.append(prev)
            if terminated or truncated:
                over = True
                break
        if not over:
            break
        steps_in //= 2
    while len(frames) < keep_frames:                  # a start near the reset: the first frame repeated
        frames.appendleft(frames[0])
    return PlayStart(seed=seed, steps_in=steps_in, frames=np.stack(frames), actions=list(actions),
                     state=emulator.unwrapped.ale.cloneState())


def play_starts(emulator: gym.Env, num: int, seed: int, keep_frames: int) -> list[PlayStart]:
    rng = np.random.default_rng(seed)
    return [play_start(emulator, seed + i, int(rng.integers(*START_STEPS)), keep_frames)
            for i in tqdm(range(num), desc="real mid-game starts", unit="start", leave=False)]


# ------------------------------------------------------------------------------- playing

Step = Callable[[int], tuple[np.ndarray, float, bool]]   # action -> (next frame, its points, the game is over)


@dataclass
class Played:
    frames: np.ndarray    # (n + 1, H, W, 3) uint8, the frame play started from first
    actions: np.ndarray   # (n,) int64
    points: float = 0.0   # what the game's own counter gave: the emulator's score, the neural game's rewards


def play(step: Step, first: np.ndarray, prev_action: int | None, player: BreakoutFollower,
         rng: np.random.Generator, steps: int) -> Played:
    """The player plays ``steps`` steps (fewer if the game ends), reading each frame ``step`` returns."""
    frames, actions, frame, prev, points = [first], [], first, prev_action, 0.0
    for _ in range(steps):
        prev = player.act(frame, prev, rng)
        frame, reward, over = step(prev)
        frames.append(frame)
        actions.append(prev)
        points += reward
        if over:
            break
    return Played(frames=np.stack(frames), actions=np.array(actions, dtype=np.int64), points=points)


def emulator_step(emulator: gym.Env) -> Step:
    def step(action: int) -> tuple[np.ndarray, float, bool]:
        frame, reward, terminated, truncated, _ = emulator.step(action)
        return frame, float(reward), terminated or truncated
    return step


def neural_step(env: NeuralBreakoutEnv) -> Step:
    """The neural game on the map's codes; it plays on past its reward model's game over."""
    def step(action: int) -> tuple[np.ndarray, float, bool]:
        frame, reward = env.step(action)[:2]
        return frame, reward, False
    return step


def oracle_step(env: NeuralBreakoutEnv, emulator: gym.Env, start: PlayStart) -> Step:
    """The neural game driven by the encoder's code of each step of a lockstep emulator."""
    model = env.world_model
    c = model.config.context_frames

    def indices(frames: np.ndarray) -> torch.Tensor:
        return model.to_indices(torch.from_numpy(np.ascontiguousarray(frames)).to(model.device)).to(torch.uint8)

    context = deque(indices(start.frames[-c:]), maxlen=c)                      # C x (H, W)

    def step(action: int) -> tuple[np.ndarray, float, bool]:
        real, _, terminated, truncated, _ = emulator.step(action)
        with torch.inference_mode():
            nxt = indices(real[None])                                           # (1, H, W)
            codes = model.encode_latents(torch.stack(list(context))[None], nxt)[0].cpu().numpy()
        context.append(nxt[0])
        frame, reward = env.step_latents(codes, action)[:2]
        return frame, reward, terminated or truncated
    return step


def play_side(side: str, env: NeuralBreakoutEnv, emulator: gym.Env, start: PlayStart, steps: int) -> Played:
    """One side's game from ``start``."""
    if side != "neural":
        emulator.unwrapped.ale.restoreState(start.state)
    if side != "emulator":
        env.reset(seed=start.seed, options={"frames": start.frames, "previous_actions": start.actions})
    step = {"emulator": lambda: emulator_step(emulator), "neural": lambda: neural_step(env),
            "oracle": lambda: oracle_step(env, emulator, start)}[side]()
    first = start.frames[-1] if side == "emulator" else env.frame
    return play(step, first, start.actions[-1] if start.actions else None, follower(emulator),
                np.random.default_rng(start.seed), steps)


# ------------------------------------------------------------------------------- what a game did

@dataclass
class GameStats:
    """What one game showed, read from its frames' pixels."""
    steps: int
    bricks: int             # bricks that went (``bricks_broken``)
    points: int             # their points (7, 4 or 1 by row)
    counted_points: float   # the points the game's own counter gave (``Played.points``; 0 without a reward model)
    paddle_hits: int        # a falling ball turned upward at the paddle
    balls_lost: int         # a ball last seen low vanished for SERVE_GAP frames or more
    serves: int             # a ball shown after SERVE_GAP ball-less frames or more
    ball_shown: int         # frames with a ball
    paddle_whole: int       # frames whose paddle is well formed (``paddle_well_formed``)
    one_ball: int           # frames with at most one ball
    ball_still: int         # frames whose ball stood in the same place for STILL_STEPS frames
    collapse: int | None    # the step at which the paddle had been missing or malformed COLLAPSE_RUN steps in a row


def game_stats(frames: np.ndarray, counted_points: float = 0.0) -> GameStats:
    """Stats of a game from its frames (n + 1, H, W, 3), the frame it started from first, and the
    points its own counter gave."""
    gone = objects.bricks_broken(frames).sum(axis=2)                  # (n, 6)
    ball = objects.ball_position(frames)                              # (n + 1, 2)
    row, col = ball[:, 0], ball[:, 1]
    shown = ~np.isnan(row)
    paddle = objects.paddle_x(frames)
    whole = objects.paddle_well_formed(frames[1:])
    return GameStats(
        steps=len(frames) - 1,
        bricks=int(gone.sum()),
        points=int((gone * np.array(objects.BRICK_POINTS)).sum()),
        counted_points=counted_points,
        paddle_hits=count_paddle_hits(row, col, paddle),
        balls_lost=sum(1 for t in ball_gone_at(shown) if row[t - 1] >= objects.LOST_ROW),
        serves=sum(1 for t in range(1, len(shown)) if shown[t] and t >= SERVE_GAP and not shown[t - SERVE_GAP:t].any()),
        ball_shown=int(shown[1:].sum()),
        paddle_whole=int(whole.sum()),
        one_ball=int((objects.ball_count(frames[1:]) <= 1).sum()),
        ball_still=count_still(ball)[1:].sum().item(),
        collapse=first_run_end(~whole, COLLAPSE_RUN),
    )


def count_paddle_hits(row: np.ndarray, col: np.ndarray, paddle: np.ndarray) -> int:
    with np.errstate(invalid="ignore"):
        turn = (row[1:-1] > row[:-2]) & (row[2:] < row[1:-1]) & (row[1:-1] >= HIT_ROW)
        near = np.abs(paddle[1:-1] - col[1:-1]) <= HIT_REACH_PX
    return int((turn & near).sum())


def ball_gone_at(shown: np.ndarray) -> list[int]:
    """Frames t where a ball shown at t - 1 is not shown for SERVE_GAP frames (or to the end)."""
    return [t for t in range(1, len(shown)) if shown[t - 1] and not shown[t:t + SERVE_GAP].any()]


def count_still(ball: np.ndarray) -> np.ndarray:
    """(n,) bool: the ball (n, 2) is shown in the same place as in the STILL_STEPS - 1 frames before."""
    still = np.zeros(len(ball), dtype=bool)
    for t in range(STILL_STEPS - 1, len(ball)):
        window = ball[t - STILL_STEPS + 1:t + 1]
        still[t] = not np.isnan(window).any() and (window == window[-1]).all()
    return still


def first_run_end(flags: np.ndarray, run: int) -> int | None:
    """The 1-based index at which ``flags`` has been True ``run`` times in a row, or None."""
    count = 0
    for t, flag in enumerate(flags):
        count = count + 1 if flag else 0
        if count == run:
            return t + 1
    return None


def side_summary(games: list[GameStats]) -> dict[str, float]:
    """Per 1,000 steps (pooled over the games), shares of frames, collapses, the median survival."""
    steps = sum(g.steps for g in games)
    out = {f"{k}_per_1000": 1000.0 * sum(getattr(g, k) for g in games) / steps for k in EVENTS}
    out.update({f"{k}_share": sum(getattr(g, k) for g in games) / steps for k in FRAME_SHARES})
    out["ball_still_steps"] = float(sum(g.ball_still for g in games))
    out["steps"] = float(steps)
    out["games"] = float(len(games))
    out["collapses"] = float(sum(g.collapse is not None for g in games))
    out["median_survival"] = float(np.median([g.collapse or g.steps for g in games]))
    return out


@dataclass
class OneStep:
    """One step from real frames under the follower, with the encoder's code of the real next frame."""
    steps: int = 0
    frames_exact: int = 0   # drawn frame equal to the real one, every pixel
    ball_steps: int = 0     # steps whose real or drawn next frame shows a ball
    ball_exact: int = 0     # ... with the ball's pixels exactly the real ones
    ball_lost: int = 0      # the real next frame shows a ball, the drawn one none
    paddle_right: int = 0   # the paddle as wide as the real one

    def add(self, other: OneStep) -> OneStep:
        return OneStep(**{k: getattr(self, k) + getattr(other, k) for k in asdict(self)})

    def shares(self) -> dict[str, float]:
        return {"steps": float(self.steps), "frames_exact_share": self.frames_exact / max(1, self.steps),
                "ball_exact_share": self.ball_exact / max(1, self.ball_steps), "ball_lost_steps": float(self.ball_lost),
                "paddle_width_right_share": self.paddle_right / max(1, self.steps)}


def one_step_stats(model: LatentActionModel, frames: np.ndarray, batch_size: int = 32) -> OneStep:
    """One step of the world model from every full window of real frames (T, H, W, 3), oldest first."""
    c = model.config.context_frames
    indexer = PaletteIndexer(model.config.palette)
    idx = indexer.to_indices(frames)                                              # (T, H, W) uint8
    with torch.inference_mode():
        codes, windows = encode_game(model, idx, batch_size)
        codes, windows = codes[c - 1:], windows[c - 1:]                          # full contexts only
        drawn = torch.cat([model.predict_next(torch.from_numpy(idx[windows[i:i + batch_size, :c]]).to(model.device),
                                              torch.from_numpy(codes[i:i + batch_size]).to(model.device))
                           for i in range(0, len(codes), batch_size)]).cpu().numpy()
    real = idx[windows[:, c]]
    drawn_rgb, real_rgb = indexer.to_rgb(drawn), frames[windows[:, c]]
    ball_drawn, ball_real = objects.ball_pixels(drawn_rgb), objects.ball_pixels(real_rgb)
    shown_drawn, shown_real = ball_drawn.any(axis=(1, 2)), ball_real.any(axis=(1, 2))
    return OneStep(steps=len(real), frames_exact=int((drawn == real).all(axis=(1, 2)).sum()),
                   ball_steps=int((shown_drawn | shown_real).sum()),
                   ball_exact=int(((ball_drawn == ball_real).all(axis=(1, 2)) & (shown_drawn | shown_real)).sum()),
                   ball_lost=int((shown_real & ~shown_drawn).sum()),
                   paddle_right=int((objects.paddle_width(drawn_rgb) == objects.paddle_width(real_rgb)).sum()))


# ------------------------------------------------------------------------------- repair

@dataclass
class RepairSample:
    frames: np.ndarray   # (C, H, W, 3) real context
    real: np.ndarray     # (H, W, 3) the real next frame


def repair_samples(emulator: gym.Env, num: int, seed: int, context_frames: int, every: int = 7) -> list[RepairSample]:
    """Real steps of follower games (every ``every``-th step) whose last context frame and next frame
    both show a whole paddle away from the walls and a ball in the open field."""
    samples: list[RepairSample] = []
    game = 0
    with tqdm(total=num, desc="repair samples", unit="step", leave=False) as bar:
        while len(samples) < num:
            start = play_start(emulator, seed + game, 0, context_frames)
            game += 1
            emulator.unwrapped.ale.restoreState(start.state)
            frames = play(emulator_step(emulator), start.frames[-1], None, follower(emulator),
                          np.random.default_rng(seed + game), 2000).frames
            for t in range(context_frames, len(frames) - 1, every):
                context, real = frames[t - context_frames + 1:t + 1], frames[t + 1]
                if repairable(context[-1]) and repairable(real) and len(samples) < num:
                    samples.append(RepairSample(frames=context, real=real))
                    bar.update()
    return samples


def repairable(frame: np.ndarray) -> bool:
    row = objects.ball_position(frame)[0]
    x = objects.paddle_x(frame)
    return bool(objects.paddle_well_formed(frame) and objects.paddle_width(frame) == max(objects.PADDLE_WIDTHS)
                and 20 <= x <= 140 and objects.BRICK_ROWS[1] + 8 <= row <= 170)


def damaged(kind: str, frame: np.ndarray, palette: Palette, model_palette: np.ndarray,
            to_indices: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """RGB ``frame`` with one damage of ``kind`` (REPAIRS)."""
    indices = to_indices(frame)
    if kind == "paddle_erase_4px":
        out = erase_paddle_end(indices, palette, 4, bool(rng.random() < 0.5))
    elif kind == "paddle_shift_3px":
        out = shift_paddle(indices, palette, REPAIR_SHIFT_PX * (1 if rng.random() < 0.5 else -1))
    elif kind == "stray_ball":
        out = stray_ball(indices, palette, rng)
    else:
        out = remove_ball(indices, palette)
    return model_palette[out]


def is_whole(kind: str, drawn: np.ndarray, real: np.ndarray) -> bool:
    """The next frame came out whole: a well-formed paddle as wide as the real one; at most one ball;
    the ball the real game shows."""
    if kind.startswith("paddle"):
        return bool(objects.paddle_well_formed(drawn) and objects.paddle_width(drawn) == objects.paddle_width(real))
    if kind == "stray_ball":
        return bool(objects.ball_count(drawn) <= 1)
    return bool(objects.ball_present(drawn))


def repair_trials(env: NeuralBreakoutEnv, samples: list[RepairSample], seed: int) -> dict[str, float]:
    """Share of steps whose next frame is whole (``is_whole``) when the last context frame was damaged,
    for each kind of damage; each step is drawn from the encoder's code of the real step (read from the
    undamaged frames), through the game's own step (and its frame cleaner, if it has one)."""
    model = env.world_model
    colours = model.palette.cpu().numpy()
    palette = Palette.of(colours)
    rng = np.random.default_rng(seed)

    def to_indices(frames: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.to_indices(torch.from_numpy(np.ascontiguousarray(frames)).to(model.device)).to(torch.uint8).cpu().numpy()

    whole = {kind: 0 for kind in REPAIRS}
    for s in tqdm(samples, desc="repair trials", unit="step", leave=False):
        with torch.inference_mode():
            idx = torch.from_numpy(to_indices(np.concatenate([s.frames, s.real[None]]))).to(model.device)[None]
            codes = model.encode_latents(idx[:, :-1], idx[:, -1])[0].cpu().numpy()
        for kind in REPAIRS:
            frames = s.frames.copy()
            frames[-1] = damaged(kind, frames[-1], palette, colours, to_indices, rng)
            env.reset(seed=seed, options={"frames": frames})
            drawn = env.step_latents(codes, 0)[0]
            whole[kind] += is_whole(kind, drawn, s.real)
    return {kind: count / len(samples) for kind, count in whole.items()}


# ------------------------------------------------------------------------------- together

@dataclass
class ClosedLoopSettings:
    num_games: int = 16
    steps: int = 1000
    seed: int = START_SEED
    oracle: bool = True
    repair_steps: int = 200   # real steps tried with each damage (0: none)


@dataclass
class ClosedLoop:
    starts: list[str]
    games: dict[str, list[GameStats]]          # side -> one per start
    repair: dict[str, float]
    one_step: OneStep = field(default_factory=OneStep)               # over the emulator's games
    first_games: dict[str, Played] = field(default_factory=dict)   # side -> the first start's game
    neural_steps_per_s: float = math.nan

    def summary(self) -> dict[str, Any]:
        sides = {side: side_summary(games) for side, games in self.games.items()}
        real = sides["emulator"]
        ratios = {side: {k: ratio(s[f"{k}_per_1000"], real[f"{k}_per_1000"]) for k in EVENTS}
                  for side, s in sides.items() if side != "emulator"}
        intervals = {side: ratio_intervals(games, self.games["emulator"])
                     for side, games in self.games.items() if side != "emulator"}
        return {"sides": sides, "ratios_to_emulator": ratios, "ratio_intervals_90": intervals,
                "repair_whole_share": self.repair,
                "one_step_under_follower": self.one_step.shares(),
                "survival": {side: [g.collapse for g in games] for side, games in self.games.items()},
                "neural_steps_per_s": self.neural_steps_per_s}


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def ratio_intervals(games: list[GameStats], real: list[GameStats], draws: int = 2000, seed: int = 0,
                    level: float = 0.9) -> dict[str, list[float]]:
    """Per event, the central ``level`` interval of the side's rate over the emulator's when the starts are
    drawn again with replacement (each with the emulator's game from the same start): how far 16 games
    leave a ratio free to move, so that two runs' ratios are read against that spread."""
    picks = np.random.default_rng(seed).integers(0, len(games), (draws, len(games)))

    def rate(stats: list[GameStats], key: str) -> np.ndarray:               # (draws,) pooled over each redraw
        totals = np.array([[getattr(g, key), g.steps] for g in stats], dtype=np.float64)[picks].sum(1)
        return totals[:, 0] / totals[:, 1]

    tails = 100 * (1 - level) / 2
    out = {}
    for k in EVENTS:
        side_rate, real_rate = rate(games, k), rate(real, k)
        kept = real_rate > 0                                                  # redraws with no real event say nothing
        if not kept.any():
            out[k] = [math.nan, math.nan]
            continue
        low, high = np.percentile(side_rate[kept] / real_rate[kept], [tails, 100 - tails])
        out[k] = [float(low), float(high)]
    return out


def run_closed_loop(env: NeuralBreakoutEnv, emulator: gym.Env, settings: ClosedLoopSettings) -> ClosedLoop:
    """Every side's games from the same starts, and the repair trials."""
    starts = play_starts(emulator, settings.num_games, settings.seed, env.state_length)
    sides = [s for s in SIDES if s != "oracle" or settings.oracle]
    games: dict[str, list[GameStats]] = {side: [] for side in sides}
    first: dict[str, np.ndarray] = {}
    one_step = OneStep()
    neural_seconds, neural_steps = 0.0, 0
    for side in sides:
        for i, start in enumerate(tqdm(starts, desc=f"closed loop: {side}", unit="game")):
            began = time.perf_counter()
            played = play_side(side, env, emulator, start, settings.steps)
            if side == "neural":
                neural_seconds += time.perf_counter() - began
                neural_steps += len(played.actions)
            games[side].append(game_stats(played.frames, played.points))
            if side == "emulator":
                one_step = one_step.add(one_step_stats(env.world_model, np.concatenate([start.frames[:-1], played.frames])))
            if i == 0:
                first[side] = played
    repair = {}
    if settings.repair_steps:
        samples = repair_samples(emulator, settings.repair_steps, settings.seed + 10_000, env.context_length)
        repair = repair_trials(env, samples, settings.seed)
    return ClosedLoop(starts=[f"seed {s.seed}, {s.steps_in} steps in" for s in starts], games=games, repair=repair,
                      one_step=one_step, first_games=first, neural_steps_per_s=neural_steps / neural_seconds if neural_seconds else math.nan)


def stats_table(result: ClosedLoop) -> list[dict[str, Any]]:
    """Every game's stats, one row per side and start."""
    return [{"side": side, "start": start, **asdict(g)} for side, games in result.games.items()
            for start, g in zip(result.starts, games)]


def format_summary(summary: dict[str, Any]) -> str:
    sides = summary["sides"]
    names = list(sides)
    lines = [f"{'per 1,000 steps':<22}" + "".join(f"{n:>11}" for n in names)]
    for k in EVENTS:
        lines.append(f"{k.replace('_', ' '):<22}" + "".join(f"{sides[n][f'{k}_per_1000']:>11.1f}" for n in names))
    for k in FRAME_SHARES:
        lines.append(f"{k.replace('_', ' ') + ' (frames)':<22}" + "".join(f"{sides[n][f'{k}_share']:>11.1%}" for n in names))
    lines.append(f"{'ball still (steps)':<22}" + "".join(f"{sides[n]['ball_still_steps']:>11.0f}" for n in names))
    lines.append(f"{'paddle collapses':<22}" + "".join(f"{sides[n]['collapses']:>8.0f}/{sides[n]['games']:<2.0f}" for n in names))
    lines.append(f"{'median survival':<22}" + "".join(f"{sides[n]['median_survival']:>11.0f}" for n in names))
    for side, r in summary["ratios_to_emulator"].items():
        spread = summary["ratio_intervals_90"][side]
        lines.append(f"{side} / emulator (90% of redrawn starts): " + ", ".join(
            f"{k.replace('_', ' ')} {v:.2f} ({spread[k][0]:.2f}-{spread[k][1]:.2f})" for k, v in r.items()))
    if summary["repair_whole_share"]:
        lines.append("next frame whole after a damaged last frame: " + ", ".join(
            f"{k.replace('_', ' ')} {v:.1%}" for k, v in summary["repair_whole_share"].items()))
    one = summary["one_step_under_follower"]
    lines.append(f"one step from the emulator's frames, the encoder's code: frames exact {one['frames_exact_share']:.1%}, "
                 f"ball exact {one['ball_exact_share']:.1%}, ball lost in {one['ball_lost_steps']:.0f} of "
                 f"{one['steps']:.0f} steps, paddle width right {one['paddle_width_right_share']:.1%}")
    lines.append(f"neural game: {summary['neural_steps_per_s']:.0f} steps/s in play")
    return "\n".join(lines)


def rate_whiskers(summary: dict[str, Any], side: str, rates: np.ndarray) -> np.ndarray | None:
    """(2, events): how far below and above ``rates`` the side's 90% ratio interval reaches, in events
    per 1,000 steps (the interval times the emulator's rate); None for the emulator."""
    if side not in summary["ratio_intervals_90"]:
        return None
    real = np.array([summary["sides"]["emulator"][f"{e}_per_1000"] for e in EVENTS])
    bounds = np.array([summary["ratio_intervals_90"][side][e] for e in EVENTS]).T * real     # (2, events)
    return np.nan_to_num(np.clip(np.stack([rates - bounds[0], bounds[1] - rates]), 0, None))


def plot_closed_loop(path: Any, summary: dict[str, Any], steps: int) -> None:
    """Left: the step each game's paddle collapsed (a full bar: it never did). Right: events per 1,000
    steps, each side beside the emulator, a neural side's whisker spanning its ratio's 90% interval."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    survival = {side: [c or steps for c in v] for side, v in summary["survival"].items() if side != "emulator"}
    width = 0.8 / max(1, len(survival))
    for k, (side, values) in enumerate(survival.items()):
        left.bar(np.arange(len(values)) + k * width, values, width, label=side)
    left.axhline(steps, color="grey", lw=0.8, ls="--")
    left.set_xlabel("game")
    left.set_ylabel("step the paddle collapsed")
    left.set_title(f"survival ({steps} steps: never collapsed)")
    left.legend()
    sides = summary["sides"]
    width = 0.8 / len(sides)
    for k, side in enumerate(sides):
        rates = np.array([sides[side][f"{e}_per_1000"] for e in EVENTS])
        right.bar(np.arange(len(EVENTS)) + k * width, rates, width, label=side, yerr=rate_whiskers(summary, side, rates))
    right.set_xticks(np.arange(len(EVENTS)) + 0.4 - width / 2, [e.replace("_", "\n") for e in EVENTS])
    right.set_ylabel("per 1,000 steps")
    right.set_title("what happens in play (whiskers: 90% of the starts redrawn)")
    right.legend()
    fig.tight_layout()
    save_figure(fig, path)

