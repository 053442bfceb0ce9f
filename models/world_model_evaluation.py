"""The world model against the emulator, in lockstep: the same actions to both from the same real
start, the model open loop on its own frames, every figure beside copying the last frame.

- Open loop: ``emulator_rollouts`` starts each game from a fresh seeded emulator game
  (``neural_env.real_opening``) and gives a seeded random policy's actions to both;
  ``episode_rollouts`` starts from recorded games instead and compares with their recorded frames.
- ``step_curves``: per step, every frame metric of ``models.world_model_metrics`` for the model,
  for the last real context frame held still ("nothing moves") and, PSNR only, for the previous
  real frame (the one-step copy baseline).
- ``controllability``: from the same real state, hold LEFT (then RIGHT) for a few steps in both;
  a trial passes when the neural paddle goes the emulator's way, or both stay (at a wall).
- ``delta_psnr_t4``: Genie's figure, a 4-step rollout driven by the latents the encoder reads from
  the real frames against one driven by random latents. Its PSNR pools the squared error of all
  starts, so when the encoder's rollouts are nearly exact (likelier with few starts) the figure
  grows large: compare it only between runs with the same starts.
Breakout's objects are read from pixels by ``models.breakout_objects``."""
from __future__ import annotations

import math
import os
import time
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from models import breakout_objects as objects
from models import world_model_metrics as wm
from models.action_pairs import encode_game
from models.atari import make_rgb_env
from models.cli import UserError
from models.episodes import EpisodeError, load_episode
from models.figures import pyplot, save_figure
from models.latent_action import ROLLOUT_STEPS, LatentActionModel, inferred_codes, rollout
from models.neural_env import (ACTION_MEMORY, ACTION_NAMES, CLEANER_FILE, LEFT, MAPPER_FILES, REWARD_FILE, RIGHT,
                               WORLD_MODEL_FILES, NeuralBreakoutEnv, checkpoint_folder, paired_rollout, real_opening)
from models.players import held_actions

REPORT_STEPS = (1, 5, 20, 100)
FIRST_STEPS = 20             # the open-loop targets' horizon: summary means over steps 1-20 too
MAX_MOVES_AFTER_FIRE = 12   # a start plays up to this many random moves after FIRE: paddles everywhere
STAY_PX = 1.0               # a paddle that moved less than this stayed
PADDLE_TOLERANCE_PX = 2.0   # the paddle target at step FIRST_STEPS: games off by more than this are counted
BASELINES = ("model", "copy_last_frame")


# ------------------------------------------------------------------------------- open loop

def random_actions(rng: np.random.Generator, steps: int) -> np.ndarray:
    """(steps,) int64 actions of the evaluation's random player: keys held as a person trying the
    controls does (``models.players.HoldingRandomPlayer``), FIRE among them so a lost ball comes back."""
    return held_actions(list(ACTION_NAMES), steps, rng)


class StepClock:
    """The neural environment, adding up the seconds its ``step`` takes (the model's speed)."""

    def __init__(self, env: NeuralBreakoutEnv):
        self.env = env
        self.seconds = 0.0
        self.steps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._timed(self.env.step, action)

    def step_latents(self, codes: np.ndarray, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self._timed(self.env.step_latents, codes, action)

    def _timed(self, step: Callable[..., tuple], *args: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        start = time.perf_counter()
        out = step(*args)
        self.seconds += time.perf_counter() - start
        self.steps += 1
        return out

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else math.nan


@dataclass
class Rollouts:
    """N games of S steps, played by the model and by the real game from the same real frames."""
    source: str          # "emulator" or "episodes"
    starts: list[str]    # (N,) where each game started: "seed 3" or "game_00012.npz step 140"
    context: np.ndarray  # (N, C, H, W, 3) uint8, the real frames both started from
    actions: np.ndarray  # (N, S) int64
    real: np.ndarray     # (N, S, H, W, 3) uint8, the emulator's (or the recording's) frames
    neural: np.ndarray   # (N, S, H, W, 3) uint8, the model's frames

    @property
    def previous(self) -> np.ndarray:
        """(N, S, H, W, 3): the real frame before each step's."""
        return np.concatenate([self.context[:, -1:], self.real[:, :-1]], axis=1)


@dataclass
class StartState:
    """A fresh emulator game: ``real_opening(emulator, C, seed, moves_after_fire)``."""
    seed: int
    moves_after_fire: int


def start_states(seed: int, num_starts: int, rng: np.random.Generator) -> list[StartState]:
    return [StartState(seed + i, int(rng.integers(0, MAX_MOVES_AFTER_FIRE + 1))) for i in range(num_starts)]


def emulator_rollouts(env: StepClock, emulator: gym.Env, starts: Sequence[StartState], steps: int,
                      rng: np.random.Generator) -> Rollouts:
    """Each start's real frames to both, then the random player's actions to both."""
    pairs = [paired_rollout(env, emulator, s.seed, random_actions(rng, steps), s.moves_after_fire)
             for s in tqdm(starts, desc="lockstep from emulator starts", unit="game")]
    return Rollouts(source="emulator", starts=[f"seed {s.seed}" for s in starts],
                    context=np.stack([p.start for p in pairs]), actions=np.stack([p.actions for p in pairs]),
                    real=np.stack([p.real for p in pairs]), neural=np.stack([p.neural for p in pairs]))


def recorded_steps(path: str | os.PathLike) -> int:
    """Number of steps of an episode file, reading only its actions."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return int(data["actions"].shape[0])
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise EpisodeError(f"episode file {path} is truncated or not an episode archive ({type(exc).__name__})") from exc


def encoder_codes(model: LatentActionModel, frames: np.ndarray) -> np.ndarray:
    """The encoder's codes (S, num_latents) of each step of real RGB ``frames`` (C + S, H, W, 3): the
    steps with a full context, as ``encode_game`` reads them in collecting pairs."""
    with torch.inference_mode():
        indices = model.to_indices(torch.from_numpy(np.ascontiguousarray(frames)).to(model.device))
    return encode_game(model, indices.to(torch.uint8).cpu().numpy())[0][model.config.context_frames - 1:]


def episode_rollouts(env: StepClock, files: Sequence[Path], num_starts: int, steps: int,
                     rng: np.random.Generator, latents: str = "map") -> Rollouts:
    """Starts at seeded random steps of recorded games (spread over the games, each loaded once); the
    model gets the recorded actions and is compared with the recorded frames. With ``latents``
    "encoder" each step is drawn from the encoder's codes of the recorded frames instead of the
    map's (the same starts): what is left of the error is the world model's own."""
    c = env.context_length
    usable = [f for f in files if recorded_steps(f) >= steps + c - 1]
    if not usable:
        raise UserError(f"none of the {len(files)} test games has the {steps + c - 1} steps that {c} context "
                        f"frames and --steps {steps} need; lower --steps")
    usable = [usable[i] for i in rng.permutation(len(usable))]
    plan = [usable[i % len(usable)] for i in range(num_starts)]
    names, context, actions, real, neural = [], [], [], [], []
    with tqdm(total=num_starts, desc="lockstep from recorded games", unit="game") as bar:
        for path in dict.fromkeys(plan):
            ep = load_episode(path)
            for _ in range(plan.count(path)):
                t = int(rng.integers(c - 1, ep.num_steps - steps + 1))   # the last context frame
                start = ep.frames[max(0, t - env.state_length + 1):t + 1]   # the map may look further back
                before = [int(a) for a in ep.actions[max(0, t - ACTION_MEMORY):t]]   # the moves the paddle is finishing
                env.reset(seed=int(rng.integers(2 ** 31)), options={"frames": start, "previous_actions": before})
                played = ep.actions[t:t + steps]
                if latents == "encoder":
                    codes = encoder_codes(env.world_model, ep.frames[t - c + 1:t + steps + 1])
                    neural.append(np.stack([env.step_latents(k, int(a))[0] for k, a in zip(codes, played)]))
                else:
                    neural.append(np.stack([env.step(int(a))[0] for a in played]))
                names.append(f"{path.name} step {t}")
                context.append(start[-c:])
                actions.append(ep.actions[t:t + steps].astype(np.int64))
                real.append(ep.frames[t + 1:t + steps + 1])
                bar.update()
    return Rollouts(source="episodes", starts=names, context=np.stack(context), actions=np.stack(actions),
                    real=np.stack(real), neural=np.stack(neural))


def step_curves(rollouts: Rollouts) -> dict[str, dict[str, np.ndarray]]:
    """Per step (S,): every ``wm.frame_metrics`` figure of the model and of the held last context
    frame, pooled over the N games; and ``copy_previous`` {"psnr"}: the previous real frame."""
    previous = rollouts.previous
    held = rollouts.context[:, -1]
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in BASELINES}
    copy_previous = []
    for t in tqdm(range(rollouts.real.shape[1]), desc="frame metrics", unit="step", leave=False):
        truth = rollouts.real[:, t]
        rows["model"].append(wm.frame_metrics(rollouts.neural[:, t], truth, previous[:, t]))
        rows["copy_last_frame"].append(wm.frame_metrics(held, truth, previous[:, t]))
        copy_previous.append(wm.psnr(previous[:, t], truth))
    curves = {name: {k: np.array([r[k] for r in steps]) for k in steps[0]} for name, steps in rows.items()}
    curves["copy_previous"] = {"psnr": np.array(copy_previous)}
    return curves


def paddle_errors_by_game(rollouts: Rollouts, step: int) -> np.ndarray:
    """(N,) |x| error of the model's paddle at ``step`` (1-based) in each game, NaN where either frame shows
    none. The mean over games hides how it is made: a paddle that leaves a wall one step early or late
    stays about 20 px off until it meets a wall again, while most games are exact."""
    return np.abs(objects.paddle_x(rollouts.neural[:, step - 1]) - objects.paddle_x(rollouts.real[:, step - 1]))


DISAGREEMENTS = ("model_serves_alone", "real_serves_alone", "model_loses_ball", "model_keeps_lost_ball")


def presence_disagreements(rollouts: Rollouts) -> dict[str, float]:
    """Share of all steps on which the model and the real game disagree about showing a ball, by how
    each stretch of disagreement began (read at the step before it): the model served a ball the real
    game did not, the real game served one the model did not, the model lost a ball the real game
    still has, or kept one the real game lost."""
    n, s = rollouts.actions.shape
    real = objects.ball_present(rollouts.real.reshape(n * s, *rollouts.real.shape[2:])).reshape(n, s)
    neural = objects.ball_present(rollouts.neural.reshape(n * s, *rollouts.neural.shape[2:])).reshape(n, s)
    before = objects.ball_present(rollouts.context[:, -1])[:, None]                       # the same real frame
    real_prev, neural_prev = (np.concatenate([before, x[:, :-1]], axis=1) for x in (real, neural))
    counts = dict.fromkeys(DISAGREEMENTS, 0)
    for i in range(n):
        kind = None
        for t in range(s):
            if real[i, t] == neural[i, t]:
                kind = None
                continue
            starts = kind is None or neural[i, t] != neural[i, t - 1]
            if starts and neural[i, t]:
                kind = "model_keeps_lost_ball" if neural_prev[i, t] else "model_serves_alone"
            elif starts:
                kind = "model_loses_ball" if real_prev[i, t] else "real_serves_alone"
            counts[kind] += 1
    return {kind: count / (n * s) for kind, count in counts.items()}


# ------------------------------------------------------------------------------- control

@dataclass
class ControlTrial:
    start: str
    action: str        # "LEFT" or "RIGHT", held ``steps`` steps
    real_dx: float     # paddle x after minus before, px (NaN: no paddle)
    neural_dx: float

    @property
    def passed(self) -> bool:
        real, neural = direction(self.real_dx), direction(self.neural_dx)
        return real is not None and real == neural

    @property
    def movable(self) -> bool:
        """The emulator's paddle moved (it was not against the wall it was pushed to)."""
        return direction(self.real_dx) not in (None, 0)


def direction(dx: float) -> int | None:
    """-1 left, 1 right, 0 stayed (under STAY_PX), None when no paddle was seen."""
    if math.isnan(dx):
        return None
    return 0 if abs(dx) < STAY_PX else int(np.sign(dx))


def controllability(env: StepClock, emulator: gym.Env, starts: Sequence[StartState], hold_steps: int) -> list[ControlTrial]:
    """From each start (emulator state cloned, model reset to the same frames), hold LEFT, then
    RIGHT, for ``hold_steps`` steps in both, and compare how far the paddle went."""
    ale = emulator.unwrapped.ale
    trials = []
    for s in tqdm(starts, desc="controllability", unit="start"):
        opening, before = real_opening(emulator, env.context_length, s.seed, s.moves_after_fire)
        state = ale.cloneState()
        x0 = objects.paddle_x(opening[-1])
        for action, name in ((LEFT, "LEFT"), (RIGHT, "RIGHT")):
            ale.restoreState(state)
            env.reset(seed=s.seed, options={"frames": opening, "previous_actions": before})
            for _ in range(hold_steps):
                real = emulator.step(action)[0]
                neural = env.step(action)[0]
            trials.append(ControlTrial(start=f"seed {s.seed}", action=name, real_dx=float(objects.paddle_x(real) - x0),
                                       neural_dx=float(objects.paddle_x(neural) - x0)))
    return trials


@torch.inference_mode()
def delta_psnr_t4(env: NeuralBreakoutEnv, rollouts: Rollouts, seed: int) -> float:
    """Genie's ΔPSNR at t = 4 on the real games: the world model driven by the latents its encoder reads
    from the real frames, minus driven by random latents (the mapper plays no part)."""
    model = env.world_model
    context = model.to_indices(torch.from_numpy(rollouts.context).to(model.device)).to(torch.uint8)  # (N, C, H, W)
    future = model.to_indices(torch.from_numpy(rollouts.real[:, :ROLLOUT_STEPS]).to(model.device))   # (N, 4, H, W)
    generator = torch.Generator().manual_seed(seed)
    n = context.shape[0]
    random = torch.stack([model.random_codes(n, generator) for _ in range(ROLLOUT_STEPS)], dim=1)  # (N, 4, L)
    inferred = rollout(model, context, inferred_codes(model, context, future.to(torch.uint8)))[:, -1]
    randomly = rollout(model, context, random)[:, -1]
    return wm.delta_psnr(rollouts.real[:, ROLLOUT_STEPS - 1], model.to_rgb(inferred).cpu().numpy(),
                         model.to_rgb(randomly).cpu().numpy())


# ------------------------------------------------------------------------------- together

@dataclass
class EvaluationSettings:
    steps: int
    num_starts: int
    control_steps: int
    seed: int
    game: str = "Breakout"
    episode_files: list[Path] | None = None   # the held-out games to start from; None: fresh emulator games
    latents: str = "map"                       # "map", or "encoder": the encoder's codes of the recorded frames


@dataclass
class Evaluation:
    rollouts: Rollouts
    curves: dict[str, dict[str, np.ndarray]]   # see step_curves
    controls: list[ControlTrial]
    delta_psnr_t4: float                       # NaN when --steps < 4
    model_steps_per_s: float

    def at_steps(self) -> dict[int, dict[str, dict[str, float]]]:
        """{step: {"model": {...}, "copy_last_frame": {...}, "copy_previous": {"psnr"}}} at REPORT_STEPS."""
        steps = self.rollouts.real.shape[1]
        return {s: {name: {k: float(v[s - 1]) for k, v in curve.items()} for name, curve in self.curves.items()}
                for s in REPORT_STEPS if s <= steps}

    @cached_property
    def summary(self) -> dict[str, float]:
        """Means over all steps and over steps 1-FIRST_STEPS (``..._mean_first_20``; all steps when there
        are fewer), how the paddle error at step FIRST_STEPS spreads over the games, the kinds of ball
        presence disagreement, the control shares, the speed. Worked out once: reading the ball in every
        frame takes seconds."""
        out = {f"{name}_{k}_mean": nanmean(v) for name, curve in self.curves.items() for k, v in curve.items()}
        out.update({f"{name}_{k}_mean_first_{FIRST_STEPS}": nanmean(v[:FIRST_STEPS])
                    for name, curve in self.curves.items() for k, v in curve.items()})
        errors = paddle_errors_by_game(self.rollouts, min(FIRST_STEPS, self.rollouts.real.shape[1]))
        seen = errors[~np.isnan(errors)]
        out.update({f"model_paddle_error_px_median_at_{FIRST_STEPS}": float(np.median(seen)) if seen.size else math.nan,
                    f"model_paddle_off_share_at_{FIRST_STEPS}": share(seen > PADDLE_TOLERANCE_PX)})
        out.update({f"ball_disagreement_{kind}": v for kind, v in presence_disagreements(self.rollouts).items()})
        movable = [t for t in self.controls if t.movable]
        out.update(controllability=share(t.passed for t in self.controls),
                   controllability_movable=share(t.passed for t in movable),
                   control_trials=float(len(self.controls)), control_trials_movable=float(len(movable)),
                   delta_psnr_t4=self.delta_psnr_t4, model_steps_per_s=self.model_steps_per_s)
        return out


def nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def share(flags: Any) -> float:
    flags = list(flags)
    return float(np.mean(flags)) if flags else math.nan


def evaluate(env: NeuralBreakoutEnv, settings: EvaluationSettings, rng: np.random.Generator) -> Evaluation:
    """Open loop from real starts, controllability from emulator starts, ΔPSNR at t = 4."""
    clock = StepClock(env)
    emulator = make_rgb_env(settings.game)
    try:
        starts = start_states(settings.seed, settings.num_starts, rng)
        if settings.episode_files is None:
            rollouts = emulator_rollouts(clock, emulator, starts, settings.steps, rng)
        else:
            rollouts = episode_rollouts(clock, settings.episode_files, settings.num_starts, settings.steps, rng,
                                        settings.latents)
        open_loop_speed = clock.steps_per_s
        controls = controllability(clock, emulator, starts, settings.control_steps)
    finally:
        emulator.close()
    delta = delta_psnr_t4(env, rollouts, settings.seed) if settings.steps >= ROLLOUT_STEPS else math.nan
    return Evaluation(rollouts=rollouts, curves=step_curves(rollouts), controls=controls, delta_psnr_t4=delta,
                      model_steps_per_s=open_loop_speed)


# ------------------------------------------------------------------------------- outputs

def checkpoint_files(checkpoint_dir: str | os.PathLike) -> dict[str, str | None]:
    """The files the neural environment loads from ``checkpoint_dir`` (its order of preference); the
    optional ones are None where the folder lacks them, and the cleaner is used only with --clean_frames."""
    folder = checkpoint_folder(checkpoint_dir)

    def first(names: tuple[str, ...]) -> str | None:
        return next((str(folder / n) for n in names if (folder / n).is_file()), None)

    return {"world_model": first(WORLD_MODEL_FILES), "mapper": first(MAPPER_FILES),
            "frame_cleaner": first((CLEANER_FILE,)), "reward_model": first((REWARD_FILE,))}


def report(evaluation: Evaluation, settings: dict[str, Any], checkpoints: dict[str, str]) -> dict[str, Any]:
    """Everything measured, with the settings and weights that measured it; NaN becomes null."""
    r = evaluation.rollouts
    body = {
        "settings": settings,
        "checkpoints": checkpoints,
        "source": r.source,
        "starts": r.starts,
        "summary": evaluation.summary,
        "at_steps": {str(s): v for s, v in evaluation.at_steps().items()},
        "per_step": {name: {k: v.tolist() for k, v in curve.items()} for name, curve in evaluation.curves.items()},
        "controllability_trials": [{"start": t.start, "action": t.action, "real_dx": t.real_dx,
                                    "neural_dx": t.neural_dx, "passed": t.passed} for t in evaluation.controls],
        "notes": {
            "copy_last_frame": "the last real context frame held still, against the real frame at each step",
            "copy_previous": "the previous real frame against the real frame (one-step copy baseline)",
            "controllability": f"share of LEFT/RIGHT holds from the same state where the neural paddle moved "
                               f"the emulator's way, or both stayed (moves under {STAY_PX:g} px count as staying)",
            "delta_psnr_t4": "PSNR at t=4 of a rollout on the encoder's latents minus one on random latents",
            f"model_paddle_off_share_at_{FIRST_STEPS}": f"share of the games (of those where both frames show a "
                                                      f"paddle) whose model paddle is more than "
                                                      f"{PADDLE_TOLERANCE_PX:g} px off the real one at step {FIRST_STEPS}",
        },
    }
    return json_safe(body)


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (JSON has no NaN), numpy numbers plain ones."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def difference_frames(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3): white where ``a`` and ``b`` differ, black where they agree."""
    differ = np.any(a != b, axis=-1, keepdims=True)
    return np.where(differ, 255, 0).astype(np.uint8).repeat(3, axis=-1)


def plot_curves(path: str | os.PathLike, title: str, ylabel: str, series: dict[str, np.ndarray]) -> None:
    """One line per series against the step (1..S), saved atomically as a PNG."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for label, values in series.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=label, marker="." if len(values) < 30 else None)
    ax.set_xlabel("step (open loop; one step = 4 emulator frames)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def write_plots(output_dir: Path, curves: dict[str, dict[str, np.ndarray]]) -> list[Path]:
    """psnr.png, paddle_error.png and ball_recall.png in ``output_dir``."""
    model, copy = curves["model"], curves["copy_last_frame"]
    plots = {
        "psnr.png": ("PSNR against the real game", "PSNR (dB)",
                     {"model": model["psnr"], "copy last context frame": copy["psnr"],
                      "copy previous real frame": curves["copy_previous"]["psnr"]}),
        "paddle_error.png": ("Paddle x error", "px", {"model": model["paddle_error_px"],
                                                      "copy last context frame": copy["paddle_error_px"]}),
        "ball_recall.png": ("Ball shown when the real game shows it", "share of games",
                            {"model": model["ball_recall"], "copy last context frame": copy["ball_recall"]}),
    }
    paths = []
    for name, (title, ylabel, series) in plots.items():
        plot_curves(output_dir / name, title, ylabel, series)
        paths.append(output_dir / name)
    return paths


def format_table(evaluation: Evaluation) -> str:
    """A short text table: the REPORT_STEPS rows, model / copy-last-frame in each cell, then the totals."""
    def cell(row: dict[str, dict[str, float]], key: str, fmt: str) -> str:
        return " / ".join(format(row[name][key], fmt) for name in BASELINES)

    header = (f"{'step':>5}  {'PSNR dB':>13}  {'exact frames':>13}  {'paddle err px':>13}  {'ball err px':>13}  "
              f"{'ball recall':>13}")
    lines = ["model / copy last context frame", header]
    for step, row in evaluation.at_steps().items():
        lines.append(f"{step:>5}  {cell(row, 'psnr', '5.1f'):>13}  {cell(row, 'pixel_exact', '5.2f'):>13}  "
                     f"{cell(row, 'paddle_error_px', '5.1f'):>13}  {cell(row, 'ball_error_px', '5.1f'):>13}  "
                     f"{cell(row, 'ball_recall', '5.2f'):>13}")
    s = evaluation.summary
    lines += [f"one-step copy baseline (previous real frame): {s['copy_previous_psnr_mean']:.1f} dB mean over steps; "
              f"model {s['model_psnr_mean']:.1f} dB, held frame {s['copy_last_frame_psnr_mean']:.1f} dB",
              f"pixel-exact frames: model {s['model_pixel_exact_mean']:.1%}, held frame "
              f"{s['copy_last_frame_pixel_exact_mean']:.1%}",
              f"paddle x error: model {s['model_paddle_error_px_mean']:.2f} px; ball shown when the real game shows it: "
              f"model {s['model_ball_recall_mean']:.1%}",
              f"over steps 1-{min(FIRST_STEPS, evaluation.rollouts.real.shape[1])}: paddle x error "
              f"{s[f'model_paddle_error_px_mean_first_{FIRST_STEPS}']:.2f} px, ball shown when the real game shows it "
              f"{s[f'model_ball_recall_mean_first_{FIRST_STEPS}']:.1%}, ball presence agreement "
              f"{s[f'model_ball_presence_mean_first_{FIRST_STEPS}']:.1%}",
              f"paddle at step {min(FIRST_STEPS, evaluation.rollouts.real.shape[1])}: median error "
              f"{s[f'model_paddle_error_px_median_at_{FIRST_STEPS}']:.1f} px over the games; "
              f"{s[f'model_paddle_off_share_at_{FIRST_STEPS}']:.1%} of them more than {PADDLE_TOLERANCE_PX:g} px off",
              "steps where the model and the real game disagree about the ball: " + ", ".join(
                  f"{kind.replace('_', ' ')} {s[f'ball_disagreement_{kind}']:.1%}" for kind in DISAGREEMENTS),
              f"controllability: {s['controllability']:.0%} of {int(s['control_trials'])} LEFT/RIGHT trials "
              f"({s['controllability_movable']:.0%} of the {int(s['control_trials_movable'])} where the emulator's "
              f"paddle could move)",
              f"ΔPSNR at t=4 (encoder latents vs random latents): {s['delta_psnr_t4']:.2f} dB",
              f"model speed: {s['model_steps_per_s']:.0f} steps/s"]
    return "\n".join(lines)
