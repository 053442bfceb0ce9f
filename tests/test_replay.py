"""Tests of models/replay.py: the sum tree, frame-stack and n-step reconstruction, prioritized sampling.

Every stored frame is filled with one unique value (its creation time), so a sampled stack reads
back as the list of times it was built from, and ``stack[-1]`` names the transition."""
from collections import deque

import numpy as np
import pytest

from models.replay import PrioritizedReplayBuffer, ReplayBuffer, SumTree

SHAPE = (2, 3)  # small frames keep the tests fast; one test checks the real 84x84 size


def frames_of(values, shape=SHAPE) -> np.ndarray:
    """(N, *shape) uint8 frames, frame i filled with values[i]."""
    return np.broadcast_to(np.asarray(values, np.uint8)[:, None, None], (len(values), *shape)).copy()


def times(stacks: np.ndarray) -> np.ndarray:
    """(B, stack, H, W) -> (B, stack) frame values, after checking each frame is a whole stored frame."""
    assert (stacks == stacks[..., :1, :1]).all()
    return stacks[..., 0, 0].astype(int)


def by_key(batch) -> dict[int, int]:
    """Index in the batch of each sampled transition, keyed by the time of its state's last frame."""
    return {int(key): i for i, key in enumerate(times(batch.states)[:, -1])}


def single_env_buffer(cls=ReplayBuffer, capacity=50, steps=0, **kwargs):
    """One env whose frame values are their times 0, 1, 2, ... and ``steps`` plain steps (reward 1) added."""
    buffer = cls(capacity, num_envs=1, frame_shape=SHAPE, seed=0, **kwargs)
    buffer.start(frames_of([0]))
    for t in range(1, steps + 1):
        add_step(buffer, t, reward=1.0)
    return buffer


def add_step(buffer, value, reward=0.0, done=False, end=False, reset_value=0, action=0):
    buffer.add(np.array([action]), np.array([reward]), np.array([done]), frames_of([value]),
               np.array([end]), frames_of([reset_value]))


# ---------------------------------------------------------------- sum tree

def test_sum_tree_totals_and_last_duplicate_wins():
    tree = SumTree(5)
    assert tree.total() == 0.0
    tree.update(np.array([0, 1, 2, 3]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert tree.total() == 10.0
    tree.update(np.array([4]), np.array([0.5]))
    assert tree.total() == 10.5
    tree.update(np.array([1, 1]), np.array([7.0, 0.0]))
    assert tree.total() == 8.5
    np.testing.assert_array_equal(tree.get([0, 1, 2, 3, 4]), [1.0, 0.0, 3.0, 4.0, 0.5])


def test_sum_tree_query_known_leaves():
    tree = SumTree(4)
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    values = np.array([0.5, 1.5, 3.2, 9.9, 0.0, 1.0, 3.0, 6.0, 10.0])
    np.testing.assert_array_equal(tree.query(values), [0, 1, 2, 3, 0, 1, 2, 3, 3])


def test_sum_tree_query_never_returns_zero_priority_leaf():
    tree = SumTree(5)
    tree.update(np.arange(5), np.array([0.0, 2.0, 0.0, 4.0, 0.0]))
    np.testing.assert_array_equal(tree.query(np.array([0.0, 1.99, 2.0, 5.9, 6.0])), [1, 1, 3, 3, 3])


def test_sum_tree_of_one_leaf():
    tree = SumTree(1)
    tree.update(np.array([0]), np.array([2.0]))
    np.testing.assert_array_equal(tree.query(np.array([0.0, 1.0, 2.0])), [0, 0, 0])


def test_sum_tree_refuses_bad_input():
    tree = SumTree(4)
    with pytest.raises(ValueError):
        tree.query(np.array([0.0]))  # all priorities 0
    tree.update(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]))
    for value in (-0.1, 10.01, np.nan):
        with pytest.raises(ValueError):
            tree.query(np.array([value]))
    for priority in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            tree.update(np.array([0]), np.array([priority]))
    for index in (-1, 4):
        with pytest.raises(IndexError):
            tree.update(np.array([index]), np.array([1.0]))
    assert tree.total() == 10.0


def test_sum_tree_max_priority_is_tracked():
    tree = SumTree(4)
    assert tree.max_priority == 1.0
    tree.update(np.array([0]), np.array([3.0]))
    tree.update(np.array([0]), np.array([0.5]))
    assert tree.max_priority == 3.0


def test_sum_tree_draws_are_proportional_to_priority():
    priorities = np.array([1.0, 0.0, 5.0, 2.0, 8.0, 0.5, 3.0])
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    draws = 100_000
    leaves = tree.query(np.random.default_rng(0).random(draws) * tree.total())
    frequencies = np.bincount(leaves, minlength=len(priorities)) / draws
    assert frequencies[1] == 0.0
    assert np.abs(frequencies - priorities / priorities.sum()).max() < 0.01


# ---------------------------------------------------------------- frame stacks and n-step returns

def test_stacks_across_life_loss_and_game_boundary():
    buffer = single_env_buffer(stack=4)
    add_step(buffer, 1)
    add_step(buffer, 2)
    add_step(buffer, 3, done=True)  # life lost: returns stop, the stack runs on
    add_step(buffer, 4)
    add_step(buffer, 5, done=True, end=True, reset_value=6)  # game over; 6 starts the next game
    add_step(buffer, 7)
    add_step(buffer, 8)
    assert len(buffer) == 7  # from frames 0-4, 6, 7; frame 5 ends a game and 8 has no action yet
    batch = buffer.sample(200)
    at = by_key(batch)
    assert sorted(at) == [0, 1, 2, 3, 4, 6, 7]
    expected = {0: ([0, 0, 0, 0], [0, 0, 0, 1]), 2: ([0, 0, 1, 2], [0, 1, 2, 3]), 3: ([0, 1, 2, 3], [1, 2, 3, 4]),
                4: ([1, 2, 3, 4], [2, 3, 4, 5]), 6: ([6, 6, 6, 6], [6, 6, 6, 7]), 7: ([6, 6, 6, 7], [6, 6, 7, 8])}
    for key, (state, next_state) in expected.items():
        np.testing.assert_array_equal(times(batch.states)[at[key]], state)
        np.testing.assert_array_equal(times(batch.next_states)[at[key]], next_state)
    assert [batch.dones[at[key]] for key in (1, 2, 3, 4, 6)] == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_n_step_returns_cut_at_done_and_bootstrapped_after_truncation():
    buffer = single_env_buffer(stack=1, n_step=3, gamma=0.5)
    rewards = 2.0 ** np.arange(9)  # 1, 2, 4, ...: every step's share of a return is visible
    value = 0
    for step, reward in enumerate(rewards):
        value += 1
        done, end = step == 3, step == 5  # a life lost at step 3; a game truncated at step 5, no done
        add_step(buffer, value, reward=reward, done=done, end=end, reset_value=value + 1, action=step)
        value += end
    batch = buffer.sample(300)
    at = by_key(batch)
    # key: (return, discount, done, time of the next state's frame)
    expected = {0: (1 + 1 + 1, 0.125, 0.0, 3), 1: (2 + 2 + 2, 0.125, 1.0, 4), 2: (4 + 4, 0.25, 1.0, 4),
                3: (8, 0.5, 1.0, 4), 4: (16 + 16, 0.25, 0.0, 6), 5: (32, 0.5, 0.0, 6),
                7: (64 + 64 + 64, 0.125, 0.0, 10)}
    assert sorted(at) == sorted(expected)
    for key, (ret, discount, done, next_frame) in expected.items():
        i = at[key]
        assert (batch.returns[i], batch.discounts[i], batch.dones[i]) == (ret, discount, done)
        assert times(batch.next_states)[i, -1] == next_frame
        assert batch.actions[i] == (key if key < 7 else key - 1)
    assert batch.returns.dtype == batch.discounts.dtype == batch.dones.dtype == batch.weights.dtype == np.float32
    assert batch.actions.dtype == batch.indices.dtype == np.int64


def test_circular_wrap_keeps_only_whole_stacks():
    buffer = single_env_buffer(capacity=6, stack=3, steps=10)  # frames 5..10 left in 6 slots
    batch = buffer.sample(100)
    at = by_key(batch)
    assert len(buffer) == 3 and sorted(at) == [7, 8, 9]
    np.testing.assert_array_equal(times(batch.states)[at[7]], [5, 6, 7])
    np.testing.assert_array_equal(times(batch.next_states)[at[9]], [8, 9, 10])
    add_step(buffer, 11, end=True, reset_value=12)
    add_step(buffer, 13)  # frames 8..13 left: 10 and the new game's 12 still have whole stacks
    batch = buffer.sample(100)
    at = by_key(batch)
    assert len(buffer) == 2 and sorted(at) == [10, 12]
    np.testing.assert_array_equal(times(batch.states)[at[10]], [8, 9, 10])
    np.testing.assert_array_equal(times(batch.next_states)[at[10]], [9, 10, 11])
    np.testing.assert_array_equal(times(batch.next_states)[at[12]], [12, 12, 13])


def test_interleaved_envs_keep_separate_streams():
    buffer = ReplayBuffer(60, num_envs=3, stack=4, frame_shape=SHAPE, seed=0)
    base = np.array([0, 80, 160])  # env e: frames base[e] + time, a new game's first frame base[e] + 40 + time
    buffer.start(frames_of(base))
    for t in range(1, 12):
        ends = np.array([False, t == 5, False])
        buffer.add(np.zeros(3), np.zeros(3), ends, frames_of(base + t), ends, frames_of(base + 40 + t))
    batch = buffer.sample(500)
    envs = batch.indices // buffer.slots_per_env
    states = times(batch.states)
    assert set(envs) == {0, 1, 2}
    np.testing.assert_array_equal(states // 80, np.broadcast_to(envs[:, None], states.shape))
    env1 = {tuple(s - 80) for s in states[envs == 1]}
    assert {(0, 1, 2, 3), (45, 45, 45, 45), (45, 45, 6, 7)} <= env1  # the second game starts from frame 45
    assert len(buffer) == 3 * 11  # every step of every env completed a transition


class ReferenceStreams:
    """What a learner sees, built the obvious way: per env, each transition with its full stacks
    (filled as the env's FrameStack fills them), and the frames in the order the buffer stores them."""

    def __init__(self, num_envs, stack, n_step, gamma, slots_per_env):
        self.n_step, self.gamma, self.slots_per_env = n_step, gamma, slots_per_env
        self.time = 0
        self.stacks = [deque(maxlen=stack) for _ in range(num_envs)]
        self.transitions = [[] for _ in range(num_envs)]
        self.stored = [[] for _ in range(num_envs)]

    def new_frame(self, env, new_game):
        self.time += 1
        if new_game:
            self.stacks[env].extend([self.time] * self.stacks[env].maxlen)
        else:
            self.stacks[env].append(self.time)
        self.stored[env].append(self.time)
        return self.time

    def step(self, env, action, reward, done, end):
        state = tuple(self.stacks[env])
        next_frame = self.new_frame(env, new_game=False)
        self.transitions[env].append((state, action, reward, done, end, tuple(self.stacks[env])))
        return next_frame, (self.new_frame(env, new_game=True) if end else 0)

    def expected(self):
        """{last frame of state: (state, action, return, discount, done, next_state)} of sampleable ones."""
        table = {}
        for env, transitions in enumerate(self.transitions):
            live = set(self.stored[env][-self.slots_per_env:])
            for i, (state, action, *_) in enumerate(transitions):
                ret, k, done, next_state = 0.0, 0, False, None
                while k < self.n_step and i + k < len(transitions) and next_state is None:
                    _, _, reward, done, end, after = transitions[i + k]
                    ret += self.gamma ** k * reward
                    k += 1
                    if done or end or k == self.n_step:
                        next_state = after
                if next_state is not None and live.issuperset(state + next_state):
                    table[state[-1]] = (state, action, ret, self.gamma ** k, float(done), next_state)
        return table


def check_against_reference(buffer, reference):
    expected = reference.expected()
    assert len(buffer) == len(expected)
    if not expected:
        return
    batch = buffer.sample(2000)
    slots, first = np.unique(batch.indices, return_index=True)  # a slot drawn twice is gathered the same
    states, next_states = times(batch.states[first]), times(batch.next_states[first])
    assert sorted(states[:, -1]) == sorted(expected)  # every sampleable transition drawn, each from one slot
    for j, (i, key) in enumerate(zip(first, states[:, -1])):
        state, action, ret, discount, done, next_state = expected[key]
        assert tuple(states[j]) == state and batch.actions[i] == action
        assert batch.returns[i] == pytest.approx(ret) and batch.discounts[i] == pytest.approx(discount)
        assert batch.dones[i] == done
        assert done or tuple(next_states[j]) == next_state
    if isinstance(buffer, PrioritizedReplayBuffer):  # exactly the sampleable slots hold priority
        assert np.count_nonzero(buffer.tree.get(np.arange(buffer.capacity))) == len(buffer)


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
@pytest.mark.parametrize("stack, n_step, slots_per_env", [(1, 1, 3), (4, 3, 9), (3, 2, 30)])
def test_random_streams_match_reference(cls, stack, n_step, slots_per_env):
    """Random dones, truncations and game overs in 2 envs through many wraps, checked after every step."""
    num_envs, gamma = 2, 0.9
    rng = np.random.default_rng(stack)
    buffer = cls(slots_per_env * num_envs, num_envs, stack=stack, n_step=n_step, gamma=gamma,
                 frame_shape=SHAPE, seed=1)
    reference = ReferenceStreams(num_envs, stack, n_step, gamma, slots_per_env)
    buffer.start(frames_of([reference.new_frame(env, new_game=True) for env in range(num_envs)]))
    for _ in range(100):
        actions, rewards = rng.integers(0, 4, num_envs), rng.integers(-1, 3, num_envs).astype(float)
        dones, ends = rng.random(num_envs) < 0.15, rng.random(num_envs) < 0.1
        next_frames, reset_frames = zip(*[reference.step(env, actions[env], rewards[env], dones[env], ends[env])
                                          for env in range(num_envs)])
        buffer.add(actions, rewards, dones, frames_of(next_frames), ends, frames_of(reset_frames))
        check_against_reference(buffer, reference)
    assert reference.time < 256  # frame values stayed unique


# ---------------------------------------------------------------- prioritized replay

def per_buffer_with_priorities(td_errors, **kwargs):
    """A PER buffer (alpha 1, eps 0: priority = |td|) of len(td_errors) transitions keyed 0, 1, ...,
    with those TD errors set; returns it and the slot of each key."""
    buffer = single_env_buffer(PrioritizedReplayBuffer, steps=len(td_errors), alpha=1.0, eps=0.0, **kwargs)
    batch = buffer.sample(len(td_errors))
    at = by_key(batch)
    assert sorted(at) == list(range(len(td_errors)))  # equal priorities, stratified: each one exactly once
    slots = batch.indices[[at[key] for key in range(len(td_errors))]]
    buffer.update_priorities(slots, np.asarray(td_errors, float))
    return buffer, slots


def test_importance_weights_known_case():
    buffer, slots = per_buffer_with_priorities([1.0, -2.0, 3.0, -4.0], stack=1)
    np.testing.assert_array_equal(buffer.tree.get(slots), [1.0, 2.0, 3.0, 4.0])
    batch = buffer.sample(64, beta=0.5)
    at = by_key(batch)
    probabilities = np.array([0.1, 0.2, 0.3, 0.4])
    weights = (4 * probabilities) ** -0.5
    np.testing.assert_allclose([batch.weights[at[key]] for key in range(4)], weights / weights.max(), rtol=1e-6)
    counts = np.bincount(times(batch.states)[:, -1], minlength=4)
    assert np.abs(counts - 64 * probabilities).max() < 2  # stratified: within 2 of the expected count


def test_update_priorities_changes_sampling_frequencies():
    buffer, slots = per_buffer_with_priorities([1.0, 1.0, 1.0, 1.0], stack=1)

    def frequencies():
        keys = np.concatenate([times(buffer.sample(32).states)[:, -1] for _ in range(200)])
        return np.bincount(keys, minlength=4) / keys.size

    np.testing.assert_allclose(frequencies(), 0.25, atol=0.02)
    buffer.update_priorities(slots[3:], np.array([5.0]))
    np.testing.assert_allclose(frequencies(), [0.125, 0.125, 0.125, 0.625], atol=0.02)


def test_new_transitions_get_max_priority_and_overwritten_slots_keep_zero():
    buffer, slots = per_buffer_with_priorities([1.0, 5.0, 2.0], stack=1, capacity=6)
    add_step(buffer, 4)  # makes transition 3 complete
    batch = buffer.sample(32)
    assert buffer.tree.get(batch.indices[by_key(batch)[3]]) == 5.0
    for t in range(5, 7):
        add_step(buffer, t)  # frame 6 overwrites frame 0
    assert 0 not in by_key(buffer.sample(64))
    buffer.update_priorities(slots[:1], np.array([100.0]))  # a late update for the lost transition
    assert buffer.tree.get(slots[:1]) == 0.0 and buffer.tree.max_priority == 5.0


# ---------------------------------------------------------------- memory and bad input

def test_each_frame_is_stored_once():
    buffer = PrioritizedReplayBuffer(300_000, num_envs=8)
    assert buffer.capacity == 300_000 and buffer.frames.dtype == np.uint8
    assert buffer.frames.nbytes == 300_000 * 84 * 84  # ~2.1 GB (untouched pages cost nothing here)


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_bad_use_is_refused(cls):
    with pytest.raises(ValueError):
        cls(20, num_envs=4, stack=4)  # 5 slots per env cannot hold a stack of 4 and one step
    buffer = cls(40, num_envs=2, stack=2, frame_shape=SHAPE)
    with pytest.raises(RuntimeError):
        buffer.add(np.zeros(2), np.zeros(2), np.zeros(2), frames_of([1, 2]), np.zeros(2), frames_of([0, 0]))
    with pytest.raises(ValueError):
        buffer.start(frames_of([1, 2], shape=(84, 84)))
    buffer.start(frames_of([1, 2]))
    with pytest.raises(RuntimeError):
        buffer.start(frames_of([1, 2]))
    with pytest.raises(ValueError):
        buffer.add(np.zeros(3), np.zeros(2), np.zeros(2), frames_of([1, 2]), np.zeros(2), frames_of([0, 0]))
    with pytest.raises(ValueError):
        buffer.sample(4)  # nothing complete yet
