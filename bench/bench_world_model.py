"""Speed of the latent action model on this machine: one world-model step at batch 1 (the play
loop's cost), one training step, and the frame loader.

    python bench/bench_world_model.py                        # the default model, 1 thread
    python bench/bench_world_model.py --model_preset original --compile
    python bench/bench_world_model.py --data_dir data/episodes   # loader speed on real games
    python bench/bench_world_model.py --device cuda --batch_size 64   # on a GPU

A world-model step is ``predict_next``: context frames and a latent action in, the next frame's
palette indices out. Weights are random: speed does not depend on them."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from torch import nn

from models.cli import arg, parse_config, run_main
from models.episodes import list_episode_files
from models.frame_dataset import FramePool, PaletteIndexer, default_load_workers, palette_from_games
from models.latent_action import MODEL_PRESETS, LatentActionModel, check_train_batch, model_config, train_step
from models.runtime import pick_device

# Breakout's nine colours, so the bench runs without recorded games.
BREAKOUT_PALETTE = [[0, 0, 0], [142, 142, 142], [200, 72, 72], [180, 122, 48], [198, 108, 58],
                    [162, 162, 42], [72, 160, 72], [66, 72, 200], [66, 158, 130]]


@dataclass
class BenchConfig:
    model_preset: str = arg("default", f"model preset: {', '.join(MODEL_PRESETS)}")
    batch_size: int = arg(16, "batch size of the training step")
    threads: int = arg(1, "torch CPU threads (the play loop and most tests use 1)")
    device: str = arg("cpu", "cpu, cuda, mps or auto")
    compile: bool = arg(False, "also time the world-model step under torch.compile")
    repeats: int = arg(50, "timed repetitions of the world-model step")
    train_repeats: int = arg(5, "timed training steps")
    data_dir: str = arg("", "episode folder for the loader benchmark (empty: skip it)")

    def __post_init__(self) -> None:
        check_train_batch(self.batch_size)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer reads the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3, device: torch.device = torch.device("cpu")) -> float:
    """Median seconds of one call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def conv_macs(net: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of the convolutions in one call of ``net``."""
    total = 0

    def hook(module: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += out.numel() * module.in_channels // module.groups * k

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net(*inputs)
    for h in handles:
        h.remove()
    return total


def main() -> None:
    cfg = parse_config(BenchConfig, __doc__.splitlines()[0])
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    device = pick_device(cfg.device)
    model_cfg = model_config(cfg.model_preset, BREAKOUT_PALETTE)
    model = LatentActionModel(model_cfg).to(device).eval()
    k, c = model_cfg.num_colours, model_cfg.context_frames
    context = torch.randint(0, k, (1, c, model_cfg.height, model_cfg.width), dtype=torch.uint8, device=device)
    codes = model.random_codes(1)
    latent = model.quantizer.lookup(codes, *model_cfg.latent_grid)
    print(f"model {cfg.model_preset}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"decoder {conv_macs(model.decoder, context, latent) / 1e6:.0f} MMAC per frame, "
          f"encoder {conv_macs(model.encoder, context, context[:, -1]) / 1e6:.0f} MMAC, threads {cfg.threads}, on {device}")

    with torch.no_grad():
        step = timed(lambda: model.predict_next(context, codes), cfg.repeats, device=device)
    print(f"world-model step, batch 1:            {step * 1e3:6.1f} ms  ({1 / step:5.0f} steps/s)")
    if cfg.compile:
        compiled = torch.compile(model.decoder)
        with torch.no_grad():
            step_c = timed(lambda: model.prediction_indices(compiled(context, latent)), cfg.repeats, warmup=5,
                           device=device)
        print(f"world-model step, batch 1, compiled:  {step_c * 1e3:6.1f} ms  ({1 / step_c:5.0f} steps/s)")

    model.train()
    b = cfg.batch_size
    batch_context = torch.randint(0, k, (b, c, model_cfg.height, model_cfg.width), dtype=torch.uint8, device=device)
    batch_next = batch_context[:, -1].clone()
    batch_next[:, 180:190, 40:70] = 1  # some changed pixels, as in a real step
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    train = timed(lambda: train_step(model, optimizer, batch_context, batch_next), cfg.train_repeats, warmup=2,
                  device=device)
    print(f"training step, batch {b}:             {train * 1e3:6.1f} ms  ({b / train:5.0f} frames/s)")

    if cfg.data_dir:
        files = list_episode_files(cfg.data_dir)
        indexer = PaletteIndexer(palette_from_games(files[:5]))
        start = time.perf_counter()
        workers = default_load_workers()
        pool = FramePool(files, indexer, c, rng=np.random.default_rng(0), load_workers=workers)
        load = time.perf_counter() - start
        sample = timed(lambda: pool.sample(b), 20)
        print(f"loader: {pool.num_frames} frames of {len(pool.games)} games indexed in {load:.1f} s "
              f"({workers} threads); "
              f"a batch of {b} windows in {sample * 1e3:.1f} ms ({sample / train:.1%} of a training step)")


if __name__ == "__main__":
    run_main(main)
