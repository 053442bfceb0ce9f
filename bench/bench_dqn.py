"""Benchmark of stage 1 on this machine: Double DQN update time, batched acting time, and the
emulator's agent steps per second, from which the training throughput (agent steps/s) follows.

    python -m bench.bench_dqn [--threads N] [--batch_size 32] [--train_every 4]"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.timing import time_call
from models.atari import make_agent_vector_env
from models.dqn import DQNAgent, QNetworkConfig
from models.runtime import pick_device



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_envs", type=int, default=8)
    parser.add_argument("--train_every", type=int, default=4, help="agent steps per gradient step")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    agent = DQNAgent(QNetworkConfig(), device)
    b = args.batch_size
    batch = dict(states=torch.randint(0, 255, (b, 8, 84, 84), dtype=torch.uint8, device=device),
                 actions=torch.randint(0, 4, (b,), device=device), returns=torch.rand(b, device=device),
                 next_states=torch.randint(0, 255, (b, 8, 84, 84), dtype=torch.uint8, device=device),
                 dones=torch.zeros(b, device=device), discounts=torch.full((b,), 0.97, device=device),
                 weights=torch.ones(b, device=device))
    update_s = time_call(lambda: agent.update(**batch), 20)
    obs = np.random.randint(0, 255, (args.num_envs, 8, 84, 84), dtype=np.uint8)
    act_s = time_call(lambda: agent.q_values(obs).argmax(-1).cpu(), 50)
    envs = make_agent_vector_env(args.num_envs)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    env_s = time_call(lambda: envs.step(rng.integers(0, 4, args.num_envs)), 200)
    per_step = (env_s + act_s) / args.num_envs + update_s / args.train_every
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"Double DQN update, batch {b}: {update_s * 1e3:.1f} ms")
    print(f"acting for {args.num_envs} games in one call: {act_s * 1e3:.2f} ms")
    print(f"emulator, {args.num_envs} games per step: {args.num_envs / env_s:.0f} agent steps/s")
    print(f"expected training throughput (1 update / {args.train_every} agent steps): {1 / per_step:.0f} agent steps/s")


if __name__ == "__main__":
    main()
