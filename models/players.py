"""Who plays the recorded games: a uniform random player, a random player that holds its keys as a
person trying the controls does, the trained agent, and a scripted Breakout player that reads the
ball and paddle from the pixels and follows the ball.

Every player has ``reset()`` (a new game begins) and ``act(frame, prev_action, rng) -> int``: the
action for ``frame`` (RGB uint8 (210, 160, 3), the game as it stands), given the action the game
really received on the previous step (None on the first), which differs from the player's own
choice when the recorder swapped in a random action."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from models import checkpoint
from models.atari import FrameStack
from models.breakout_objects import FIELD_X, PADDLE_ROWS, ball_position, paddle_x
from models.cli import UserError
from models.dqn import Policy, load_policy

PLAYER_KINDS = ("random", "random_hold", "scripted", "agent")
RANDOM_PLAYERS = ("random", "random_hold")
HOLD_ODDS = {"NOOP": 0.15, "FIRE": 0.10}   # random_hold: the other actions share what is left equally
MAX_HOLD = 4                               # random_hold: each key is held 1 to MAX_HOLD steps


class Player(Protocol):
    kind: str

    def reset(self) -> None: ...

    def act(self, frame: np.ndarray, prev_action: int | None, rng: np.random.Generator) -> int: ...


class RandomPlayer:
    """Uniform random actions: poor play, but every move the game allows."""

    kind = "random"

    def __init__(self, num_actions: int):
        self.num_actions = num_actions

    def reset(self) -> None:
        pass

    def act(self, frame: np.ndarray, prev_action: int | None, rng: np.random.Generator) -> int:
        return int(rng.integers(self.num_actions))


def holding_odds(action_names: list[str]) -> np.ndarray:
    """(A,) probabilities of each action for ``HoldingRandomPlayer``: ``HOLD_ODDS`` by name, the rest
    shared by the other actions (all of them equally when none is named)."""
    named = np.array([HOLD_ODDS.get(name, np.nan) for name in action_names])
    others = np.isnan(named)
    if others.all():
        return np.full(len(action_names), 1.0 / len(action_names))
    named[others] = (1.0 - np.nansum(named)) / max(1, others.sum())
    return named / named.sum()


class HoldingRandomPlayer:
    """Random keys, each held for 1 to MAX_HOLD steps, mostly moves (``HOLD_ODDS``): play like a person
    trying the controls, who reaches the walls and turns often. A one-step uniform jitter, as
    ``RandomPlayer`` plays, barely moves the paddle, and the agent rarely turns at a wall."""

    kind = "random_hold"

    def __init__(self, action_names: list[str]):
        self.odds = holding_odds(action_names)
        self.action, self.left = 0, 0

    def reset(self) -> None:
        self.left = 0

    def act(self, frame: np.ndarray | None, prev_action: int | None, rng: np.random.Generator) -> int:
        if self.left == 0:
            self.action = int(rng.choice(len(self.odds), p=self.odds))
            self.left = int(rng.integers(1, MAX_HOLD + 1))
        self.left -= 1
        return self.action


def held_actions(action_names: list[str], steps: int, rng: np.random.Generator) -> np.ndarray:
    """(steps,) int64: a ``HoldingRandomPlayer``'s actions for a game it does not look at."""
    player = HoldingRandomPlayer(action_names)
    return np.array([player.act(None, None, rng) for _ in range(steps)], dtype=np.int64)


class AgentPlayer:
    """The trained DQN agent, fed exactly the frame stacks it saw in training (continuous across lives)."""

    kind = "agent"

    def __init__(self, policy: Policy):
        self.policy = policy
        self.stack = FrameStack(policy.stack)
        self.started = False

    def reset(self) -> None:
        self.started = False

    def act(self, frame: np.ndarray, prev_action: int | None, rng: np.random.Generator) -> int:
        obs = self.stack.push(frame) if self.started else self.stack.reset(frame)
        self.started = True
        return int(self.policy.act(obs[None], rng)[0])


def reflect(x: float, lo: float, hi: float) -> float:
    """Where a point moving freely along x ends up between walls at ``lo`` and ``hi`` (mirror bounces)."""
    width = hi - lo
    y = (x - lo) % (2 * width)
    return lo + (2 * width - y if y > width else y)


class BreakoutFollower:
    """A scripted Breakout player: while the ball falls, bring the paddle under the point where it
    will land (straight-line flight from its velocity over two frames, mirrored at the side walls),
    shifted by a random offset drawn once per fall so that the ball leaves the paddle at varied
    angles; while it rises, follow its column. FIRE serves whenever no ball is in play.

    The paddle answers late: at frame skip 4 a move shifts it about ``HALF_MOVE_PX`` within its own
    step and as much again in the next one. So the player picks the move whose resting place (the
    paddle now, plus what the previous action still adds, plus this move's two halves) is nearest
    the target, or, when the ball arrives within the next step, the move whose position after this
    step is; reacting to the paddle's position alone makes it swing past the ball.

    With ``jitter`` above 0, that share of its moves while the ball is in play are replaced by a
    random one (NOOP, RIGHT or LEFT), as a person's hand wavers; the paddle then meets the ball in
    more ways.

    It clears far more bricks than a young agent, so recordings reach the late game."""

    kind = "scripted"
    BALL_HALF_WIDTH = 1.0    # the ball is 2 pixels wide
    HALF_MOVE_PX = 11.0      # paddle shift per half of one RIGHT/LEFT step (measured at frame skip 4)

    def __init__(self, action_names: list[str], aim_noise_px: float = 3.0, jitter: float = 0.0):
        missing = {"NOOP", "FIRE", "RIGHT", "LEFT"} - set(action_names)
        if missing:
            raise UserError(f"the scripted player needs actions {sorted(missing)}, which this game lacks")
        self.noop, self.fire, self.right, self.left = (action_names.index(a) for a in ("NOOP", "FIRE", "RIGHT", "LEFT"))
        self.direction = {self.right: 1.0, self.left: -1.0}
        self.aim_noise_px = aim_noise_px
        self.jitter = jitter
        self.reset()

    def reset(self) -> None:
        self.last_ball: np.ndarray | None = None
        self.falling = False
        self.offset = 0.0

    def act(self, frame: np.ndarray, prev_action: int | None, rng: np.random.Generator) -> int:
        ball = ball_position(frame)   # (row, col), NaN when no ball is in play
        paddle = paddle_x(frame)
        if np.isnan(ball[0]):
            self.last_ball = None
            return self.fire
        target, steps_left = self._target(ball, rng)
        self.last_ball = ball
        if np.isnan(paddle):
            return self.noop
        carry = self.HALF_MOVE_PX * self.direction.get(prev_action, 0.0)
        # the ball meets the paddle within the next step: only the paddle's position then matters
        reach = 1.0 if steps_left < 1.5 else 2.0
        moves = (self.noop, self.right, self.left)  # NOOP first: it wins ties
        if self.jitter and rng.random() < self.jitter:
            return moves[int(rng.integers(len(moves)))]
        ends = [paddle + carry + reach * self.HALF_MOVE_PX * self.direction.get(a, 0.0) for a in moves]
        return moves[int(np.argmin([abs(e - target) for e in ends]))]

    def _target(self, ball: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        """The paddle-centre column to aim for, and the agent steps until the ball reaches the paddle
        (infinite while it rises)."""
        if self.last_ball is None:
            return float(ball[1]), np.inf
        d_row, d_col = ball - self.last_ball
        falling = d_row > 0
        if falling and not self.falling:
            self.offset = float(np.clip(rng.normal(0.0, self.aim_noise_px), -2 * self.aim_noise_px, 2 * self.aim_noise_px))
        self.falling = falling
        if not falling:
            return float(ball[1]), np.inf
        steps = (PADDLE_ROWS[0] - ball[0]) / d_row
        landing = reflect(ball[1] + d_col * steps, FIELD_X[0] + self.BALL_HALF_WIDTH, FIELD_X[1] - self.BALL_HALF_WIDTH)
        return landing + self.offset, steps


SCRIPTED_PLAYERS = {"Breakout": BreakoutFollower}


def check_scripted_supported(game: str) -> None:
    if game not in SCRIPTED_PLAYERS:
        raise UserError(f"no scripted player for {game} (only {', '.join(SCRIPTED_PLAYERS)}): "
                        f"use --percent_scripted 0")


def agent_file_name(game: str) -> str:
    """The shipped agent's file name in checkpoints/pretrained/."""
    return f"dqn_{game.lower()}.pt"


def shipped_agent_path(game: str) -> Path | None:
    """The agent shipped in checkpoints/pretrained/ for ``game`` (``dqn_<game>.pt``), if there is one.

    Relative to the working directory when inside it, so that episode metadata names the same
    checkpoint on every machine that runs a shard from the repository root."""
    path = checkpoint.PRETRAINED_DIR / agent_file_name(game)
    if not path.is_file():
        return None
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


def make_player(kind: str, game: str, action_names: list[str], checkpoint_path: str | None = None,
                device: str | torch.device = "cpu") -> Player:
    """Build one player; the agent needs ``checkpoint_path``."""
    if kind == "random":
        return RandomPlayer(len(action_names))
    if kind == "random_hold":
        return HoldingRandomPlayer(action_names)
    if kind == "scripted":
        check_scripted_supported(game)
        return SCRIPTED_PLAYERS[game](action_names)
    if kind == "agent":
        if checkpoint_path is None:
            raise UserError("agent games need a checkpoint: give --checkpoint_path")
        return AgentPlayer(load_policy(checkpoint_path, device))
    raise ValueError(f"unknown player kind {kind!r}")
