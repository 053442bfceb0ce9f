"""Experience replay for the DQN agent: a uniform buffer, a prioritized one, and the sum tree behind it.

Each frame is stored once. Every env owns a circular stream of ``capacity // num_envs`` slots, one
per frame; a slot also holds the transition (action, reward, done) that starts from its frame. Frame
stacks and n-step returns are rebuilt at sampling time from neighbouring slots, so 300k frames take
about 2 GB, where one stored 8-frame stack per transition would take 17 GB.

Stream layout of one env, by counter (how many frames the env had written before this one; the
frame with counter ``c`` lives in slot ``c % slots_per_env``):

    game 1: f0 f1 ... fk        fk, the frame after the game's last action, starts no transition
                                (its slot is the price of bootstrapping truncated games)
    game 2: g0 g1 ...           g0 is the reset frame; stacks before g0+stack-1 repeat g0

A life loss is a ``done`` inside a game: returns stop there, but stacks run on across it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SumTree:
    """Vectorised binary sum tree over ``capacity`` leaves (a float64 array of size 2*capacity_pow2).

    Node 1 is the root, node i has children 2i and 2i+1, and leaf j is node capacity_pow2 + j.
    Parents are recomputed from their children, never adjusted by differences, so rounding errors
    do not build up over millions of updates."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"a sum tree needs at least one leaf, got capacity {capacity}")
        self.capacity = capacity
        self._depth = int(np.ceil(np.log2(capacity)))
        self._first_leaf = 1 << self._depth
        self._nodes = np.zeros(2 * self._first_leaf, np.float64)
        self._max_priority = 1.0

    @property
    def max_priority(self) -> float:
        """The largest priority ever set (1.0 before any), given to transitions not yet replayed."""
        return self._max_priority

    def total(self) -> float:
        return float(self._nodes[1])

    def get(self, indices) -> np.ndarray:
        return self._nodes[self._first_leaf + self._check_indices(indices)]

    def update(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set leaf priorities (>= 0 and finite); where an index repeats, its last priority wins."""
        indices = self._check_indices(indices).ravel()
        priorities = np.broadcast_to(np.asarray(priorities, np.float64), indices.shape)
        if not np.all(np.isfinite(priorities) & (priorities >= 0)):
            raise ValueError("sum tree priorities must be finite and >= 0")
        if indices.size == 0:
            return
        # np.unique keeps first occurrences: on the reversed arrays those are the last ones.
        indices, last = np.unique(indices[::-1], return_index=True)
        priorities = priorities[::-1][last]
        nodes = self._first_leaf + indices
        self._nodes[nodes] = priorities
        self._max_priority = max(self._max_priority, float(priorities.max()))
        for _ in range(self._depth):
            nodes = nodes // 2  # repeated parents get the same sum, so duplicates are harmless
            self._nodes[nodes] = self._nodes[2 * nodes] + self._nodes[2 * nodes + 1]

    def query(self, values: np.ndarray) -> np.ndarray:
        """For each value in [0, total] the leaf whose prefix-sum interval [sum before, sum through) holds it.

        All values descend together, one tree level per step. The descent never enters a subtree of
        total 0, so a leaf of priority 0 is never returned, even for ``value == total`` or after
        rounding."""
        values = np.asarray(values, np.float64)
        total = self.total()
        if total <= 0:
            raise ValueError("cannot query a sum tree whose priorities are all 0")
        if not np.all((values >= 0) & (values <= total)):  # also refuses NaN
            raise ValueError(f"sum tree query values must lie in [0, {total}]")
        nodes = np.ones(values.shape, np.int64)
        for _ in range(self._depth):
            left = self._nodes[2 * nodes]
            right = self._nodes[2 * nodes + 1]
            go_right = (values >= left) & (right > 0)
            values = np.where(go_right, values - left, values)
            nodes = 2 * nodes + go_right
        return nodes - self._first_leaf

    def _check_indices(self, indices) -> np.ndarray:
        indices = np.asarray(indices, np.int64)
        if np.any((indices < 0) | (indices >= self.capacity)):
            raise IndexError(f"sum tree leaf indices must lie in [0, {self.capacity})")
        return indices


@dataclass
class ReplayBatch:
    states: np.ndarray       # (B, stack, H, W) uint8
    actions: np.ndarray      # (B,) int64
    returns: np.ndarray      # (B,) float32 n-step discounted reward sum, cut at a done or game end
    next_states: np.ndarray  # (B, stack, H, W) uint8 state after the summed steps (masked where done)
    dones: np.ndarray        # (B,) float32 1.0 where a done ended the summed steps
    discounts: np.ndarray    # (B,) float32 gamma**k for the k steps summed: the bootstrap factor
    weights: np.ndarray      # (B,) float32 importance-sampling weights (ones for uniform replay)
    indices: np.ndarray      # (B,) int64 buffer slots, for update_priorities


class ReplayBuffer:
    """Uniform replay over ``num_envs`` interleaved streams, storing each frame once (see module doc).

    A slot can be sampled when the transition starting there is complete (its n steps, or the steps
    up to a done or game end, have been added) and none of the frames its stacks need has been
    overwritten. ``capacity`` is rounded down to a multiple of ``num_envs``."""

    def __init__(self, capacity: int, num_envs: int, stack: int = 8, n_step: int = 1, gamma: float = 0.99,
                 frame_shape: tuple[int, int] = (84, 84), seed: int | None = None):
        if num_envs < 1 or stack < 1 or n_step < 1:
            raise ValueError(f"num_envs, stack and n_step must be >= 1, got {num_envs}, {stack}, {n_step}")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
        self.slots_per_env = capacity // num_envs
        if self.slots_per_env < stack + n_step + 1:
            raise ValueError(f"capacity {capacity} gives {self.slots_per_env} slots per env for {num_envs} envs; "
                             f"at least stack + n_step + 1 = {stack + n_step + 1} are needed")
        self.capacity = self.slots_per_env * num_envs
        self.num_envs = num_envs
        self.stack = stack
        self.n_step = n_step
        self.gamma = gamma
        self.frame_shape = tuple(frame_shape)
        self._rng = np.random.default_rng(seed)

        self.frames = np.zeros((self.capacity, *self.frame_shape), np.uint8)  # (S, H, W): one frame per slot
        self._actions = np.zeros(self.capacity, np.int64)
        self._rewards = np.zeros(self.capacity, np.float32)
        self._dones = np.zeros(self.capacity, bool)
        self._game_ends = np.zeros(self.capacity, bool)
        self._has_transition = np.zeros(self.capacity, bool)  # False for a game's last frame and the newest frame
        self._game_start = np.zeros(self.capacity, np.int64)  # counter of the first frame of the slot's game
        self._sampleable = np.zeros(self.capacity, bool)
        self._written = np.zeros(num_envs, np.int64)  # frames written per env: the next frame's counter
        self._envs = np.arange(num_envs)

        self._stack_offsets = np.arange(1 - stack, 1)  # (stack,) oldest frame first, like FrameStack
        self._step_offsets = np.arange(n_step)
        self._discount_powers = gamma ** self._step_offsets.astype(np.float64)
        # Counters, relative to the next one, whose sampleability an add can change: the oldest live
        # ones (their stacks lose a frame) and the newest (their n steps become complete).
        self._refresh_offsets = np.concatenate([np.arange(stack) - self.slots_per_env, np.arange(-n_step - 2, 0)])

    def __len__(self) -> int:
        """Number of transitions that can be sampled."""
        return int(np.count_nonzero(self._sampleable))

    def start(self, frames: np.ndarray) -> None:
        """Store the first frame of each env's first game; called once, after the envs' reset."""
        if self._written.any():
            raise RuntimeError("ReplayBuffer.start() is called once; later games begin through add(episode_ends=...)")
        frames = self._check_frames(frames, "frames")
        self._write_frames(self._envs, frames, game_start=self._written.copy())

    def add(self, actions, rewards, dones, next_frames, episode_ends, reset_frames) -> None:
        """Store one vector step of all envs.

        ``dones`` stop the n-step returns (life loss or game over); ``episode_ends`` mark games that
        were reset after this step (over or truncated), whose first frame ``reset_frames`` starts a
        new stack. A game truncated without a done still bootstraps from its last ``next_frames``."""
        if not self._written.any():
            raise RuntimeError("call ReplayBuffer.start() with the first frames before add()")
        actions = self._check_vector(actions, "actions")
        rewards = self._check_vector(rewards, "rewards")
        dones = self._check_vector(dones, "dones")
        episode_ends = self._check_vector(episode_ends, "episode_ends").astype(bool)
        next_frames = self._check_frames(next_frames, "next_frames")
        reset_frames = self._check_frames(reset_frames, "reset_frames")
        current = self._slot(self._envs, self._written - 1)  # (N,) slots of the frames the actions saw
        self._actions[current] = actions
        self._rewards[current] = rewards
        self._dones[current] = dones
        self._game_ends[current] = episode_ends
        self._has_transition[current] = True
        self._write_frames(self._envs, next_frames, game_start=self._game_start[current])
        ended = np.flatnonzero(episode_ends)
        self._write_frames(ended, reset_frames[ended], game_start=self._written[ended])
        self._refresh_sampleable()

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly, with replacement."""
        candidates = np.flatnonzero(self._sampleable)
        if candidates.size == 0:
            raise ValueError("the replay buffer holds no complete transition yet; add more steps before sampling")
        slots = candidates[self._rng.integers(candidates.size, size=batch_size)]
        return self._gather(slots, weights=np.ones(batch_size, np.float32))

    def _slot(self, envs: np.ndarray, counters: np.ndarray) -> np.ndarray:
        return envs * self.slots_per_env + counters % self.slots_per_env

    def _write_frames(self, envs: np.ndarray, frames: np.ndarray, game_start: np.ndarray) -> None:
        """Append one frame to each of ``envs`` (distinct) streams, overwriting their oldest slot."""
        slots = self._slot(envs, self._written[envs])
        self.frames[slots] = frames
        self._game_start[slots] = game_start
        self._has_transition[slots] = False
        self._dones[slots] = False
        self._game_ends[slots] = False
        self._written[envs] += 1

    def _n_step_window(self, envs: np.ndarray, counters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slots of the n steps starting at ``counters``, and which of them are summed (those up to and
        including the first done or game end). Flags past the newest transition may be stale; callers
        either check completeness or use only complete transitions."""
        slots = self._slot(envs[..., None], counters[..., None] + self._step_offsets)  # (..., n)
        stops = self._dones[slots] | self._game_ends[slots]
        summed = (np.cumsum(stops, axis=-1) - stops) == 0  # no stop strictly before this step
        return slots, summed

    def _is_sampleable(self, envs: np.ndarray, counters: np.ndarray) -> np.ndarray:
        """Whether the transitions at these live counters are complete with all their frames kept."""
        written = self._written[envs]
        slots = self._slot(envs, counters)
        steps = self._n_step_window(envs, counters)[1].sum(axis=-1)
        # The next state's frame (counter + steps) is written in the same add as the last summed step,
        # so having it proves the n steps are in; a stale stop flag only ever makes this test fail.
        complete = counters + steps <= written - 1
        oldest_frame = np.maximum(counters - self.stack + 1, self._game_start[slots])
        kept = oldest_frame >= written - self.slots_per_env
        return self._has_transition[slots] & complete & kept

    def _refresh_sampleable(self) -> None:
        written = self._written[:, None]
        counters = written + self._refresh_offsets  # (N, W)
        live = counters >= np.maximum(written - self.slots_per_env, 0)
        envs = np.broadcast_to(self._envs[:, None], counters.shape)[live]
        counters = counters[live]
        self._set_sampleable(self._slot(envs, counters), self._is_sampleable(envs, counters))

    def _set_sampleable(self, slots: np.ndarray, sampleable: np.ndarray) -> None:
        self._sampleable[slots] = sampleable

    def _gather(self, slots: np.ndarray, weights: np.ndarray) -> ReplayBatch:
        """Rebuild the transitions starting at ``slots`` (all sampleable) from the stored frames."""
        envs, positions = np.divmod(slots, self.slots_per_env)
        written = self._written[envs]
        counters = written - self.slots_per_env + (positions - written) % self.slots_per_env  # live counter per slot
        window, summed = self._n_step_window(envs, counters)  # (B, n)
        steps = summed.sum(axis=1)
        returns = (summed * self._discount_powers * self._rewards[window]).sum(axis=1)
        return ReplayBatch(
            states=self._stacks(envs, counters),
            actions=self._actions[slots],
            returns=returns.astype(np.float32),
            next_states=self._stacks(envs, counters + steps),
            dones=(summed & self._dones[window]).any(axis=1).astype(np.float32),
            discounts=(self.gamma ** steps).astype(np.float32),
            weights=weights.astype(np.float32),
            indices=slots.astype(np.int64),
        )

    def _stacks(self, envs: np.ndarray, counters: np.ndarray) -> np.ndarray:
        """Frame stacks ending at ``counters``; before its game's first frame a stack repeats that frame."""
        game_start = self._game_start[self._slot(envs, counters)]
        frame_counters = np.maximum(counters[:, None] + self._stack_offsets, game_start[:, None])  # (B, stack)
        return self.frames[self._slot(envs[:, None], frame_counters)]  # (B, stack, H, W)

    def _check_frames(self, frames, name: str) -> np.ndarray:
        frames = np.asarray(frames)
        expected = (self.num_envs, *self.frame_shape)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 of shape {expected}, got {frames.dtype} {frames.shape}")
        return frames

    def _check_vector(self, values, name: str) -> np.ndarray:
        values = np.asarray(values)
        if values.shape != (self.num_envs,):
            raise ValueError(f"{name} must have shape ({self.num_envs},), one value per env, got {values.shape}")
        return values


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016) over the same storage.

    A transition's priority is (|TD error| + eps)**alpha; one not yet replayed gets the largest
    priority seen so far. Slots that cannot be sampled hold priority 0 in the tree."""

    def __init__(self, capacity: int, num_envs: int, stack: int = 8, n_step: int = 1, gamma: float = 0.99,
                 frame_shape: tuple[int, int] = (84, 84), seed: int | None = None,
                 alpha: float = 0.6, eps: float = 1e-6):
        super().__init__(capacity, num_envs, stack, n_step, gamma, frame_shape, seed)
        if alpha < 0 or eps < 0:
            raise ValueError(f"alpha and eps must be >= 0, got {alpha} and {eps}")
        self.alpha = alpha
        self.eps = eps
        self.tree = SumTree(self.capacity)

    def sample(self, batch_size: int, beta: float = 0.4) -> ReplayBatch:
        """Stratified proportional sampling: one draw in each of ``batch_size`` equal segments of the
        total priority. Weights (N*P(i))**-beta are divided by the batch's largest."""
        total = self.tree.total()
        if total <= 0:
            raise ValueError("the replay buffer holds no complete transition yet; add more steps before sampling")
        segment = total / batch_size
        values = np.minimum((np.arange(batch_size) + self._rng.random(batch_size)) * segment, total)
        slots = self.tree.query(values)
        probabilities = self.tree.get(slots) / total
        weights = (len(self) * probabilities) ** -beta
        return self._gather(slots, weights=weights / weights.max())

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Priorities from the TD errors of sampled slots. A slot that stopped being sampleable since it
        was sampled (overwritten by newer frames) keeps priority 0."""
        indices = np.asarray(indices, np.int64)
        td_errors = np.asarray(td_errors, np.float64)
        if indices.shape != td_errors.shape:
            raise ValueError(f"indices {indices.shape} and td_errors {td_errors.shape} must have the same shape")
        if not np.all(np.isfinite(td_errors)):
            raise ValueError("td_errors must be finite")
        keep = self._sampleable[indices]
        self.tree.update(indices[keep], (np.abs(td_errors[keep]) + self.eps) ** self.alpha)

    def _set_sampleable(self, slots: np.ndarray, sampleable: np.ndarray) -> None:
        """Keep the tree in step: new transitions get the max priority, lost ones priority 0."""
        new = sampleable & ~self._sampleable[slots]
        priorities = np.where(new, self.tree.max_priority, np.where(sampleable, self.tree.get(slots), 0.0))
        super()._set_sampleable(slots, sampleable)
        self.tree.update(slots, priorities)
