"""Benchmark of the replay buffer on this machine: ``add`` per vector step while filling a prioritized
buffer, then ``sample`` + ``update_priorities`` per training batch (and uniform ``sample`` beside it).

    python -m bench.bench_replay [--capacity 100000] [--num_envs 8] [--batch_size 32]"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench.timing import time_call
from models.replay import PrioritizedReplayBuffer, ReplayBuffer


def fill(buffer: ReplayBuffer, rng: np.random.Generator, end_probability: float) -> float:
    """Add random frames until every slot has been written once; returns the mean seconds per add."""
    n = buffer.num_envs
    pool = rng.integers(0, 256, (64, *buffer.frame_shape), dtype=np.uint8)  # (64, 84, 84) frames to pick from
    buffer.start(pool[:n])
    steps = buffer.slots_per_env
    spent = 0.0
    for _ in range(steps):
        ends = rng.random(n) < end_probability
        args = (rng.integers(0, 4, n), rng.standard_normal(n), ends | (rng.random(n) < 0.01),
                pool[rng.integers(0, 64, n)], ends, pool[rng.integers(0, 64, n)])
        start = time.perf_counter()
        buffer.add(*args)
        spent += time.perf_counter() - start
    return spent / steps



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=100_000, help="frames")
    parser.add_argument("--num_envs", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--n_step", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1000, help="timed sample calls")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    kwargs = dict(capacity=args.capacity, num_envs=args.num_envs, n_step=args.n_step, seed=0)

    per = PrioritizedReplayBuffer(**kwargs)
    add_s = fill(per, rng, end_probability=1e-3)
    print(f"PER add: {add_s * 1e3:.3f} ms per vector step of {args.num_envs} envs "
          f"({len(per)} sampleable of {per.capacity} slots)")

    def train_batch() -> None:
        batch = per.sample(args.batch_size, beta=0.4)
        per.update_priorities(batch.indices, rng.standard_normal(args.batch_size))

    print(f"PER sample({args.batch_size}) + update_priorities: {time_call(train_batch, args.repeats) * 1e3:.3f} ms")

    uniform = ReplayBuffer(**kwargs)
    fill(uniform, rng, end_probability=1e-3)
    sample_s = time_call(lambda: uniform.sample(args.batch_size), args.repeats)
    print(f"uniform sample({args.batch_size}): {sample_s * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
