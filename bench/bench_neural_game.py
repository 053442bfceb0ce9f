"""Benchmark of stage 5 on this machine: one game step (mapper, world model, and the frame cleaner and the
reward model if any) at batch 1, wall clock and CPU time, with the trained weights or, without them, a random
model of the default config; and the steps per second of a batch of games in a gymnasium SyncVectorEnv.
The play targets against the emulator (controllability, open loop) are measured by
evaluate_world_model.py.

With ``--screenshot PATH`` it also runs play_neural_breakout.py in a virtual X display (Xvfb) and
saves a screenshot of the real window.

    python -m bench.bench_neural_game [--checkpoint_dir checkpoints/pretrained] [--screenshot /tmp/window.png]"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from models import breakout_objects as objects
from models.action_to_latent import ActionToLatent, ActionToLatentConfig
from models.atari import make_rgb_env
from models.cli import run_main
from models.frame_dataset import palette_from_frames
from models.latent_action import LatentActionModel, model_config
from models.neural_env import (ACTION_NAMES, DEFAULT_CHECKPOINT_DIR, MAPPER_FILES, RIGHT, WORLD_MODEL_FILES,
                               NeuralBreakoutEnv, checkpoint_folder, real_start)
from models.reward_model import object_places

ROOT = Path(__file__).resolve().parents[1]


def has_weights(directory: Path) -> bool:
    return any((directory / n).is_file() for n in WORLD_MODEL_FILES) and any((directory / n).is_file() for n in MAPPER_FILES)


def random_models() -> tuple[LatentActionModel, ActionToLatent]:
    """A randomly initialised world model of the default config (palette from real frames) and a
    state-aware mapper of the default config for it: the speed of the shipped architecture."""
    emulator = make_rgb_env()
    palette = palette_from_frames([real_start(emulator, 8, seed=0)])
    emulator.close()
    world = LatentActionModel(model_config("default", palette)).eval()
    cfg = world.config
    mapper = ActionToLatent(ActionToLatentConfig(num_latents=cfg.num_latents, num_codes=cfg.num_codes,
                                                 context_frames=cfg.context_frames)).eval()
    return world, mapper


def time_call_both(fn, repeats: int) -> tuple[float, float]:
    """Mean (wall, CPU) seconds per call of ``fn`` after one warm-up call. On a machine shared with
    other work the wall time grows; the process's CPU time stays close to what an idle machine gives."""
    fn()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - wall) / repeats, (time.process_time() - cpu) / repeats


def time_steps(env: NeuralBreakoutEnv, repeats: int, seed: int = 0) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per env.step, and per call of each model alone (the frame cleaner and the
    reward model too, when the game has them), at batch 1."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    step = time_call_both(lambda: env.step(int(rng.integers(len(ACTION_NAMES)))), repeats)
    actions = torch.tensor([RIGHT], device=env.device)
    context_rgb, context_idx = env._rgb, env._indices
    with torch.inference_mode():
        mapper = time_call_both(lambda: env.mapper.sample_codes(actions, context_rgb, env.temperature, env._generator,
                                                                history=torch.tensor([env._history])), repeats)
        codes = env.mapper.sample_codes(actions, context_rgb)
        world = time_call_both(lambda: env.world_model.predict_next(context_idx, codes, env.temperature,
                                                                    env._generator), repeats)
        timings = {"step": step, "mapper": mapper, "world_model": world}
        drawn = env.world_model.predict_next(context_idx, codes)                    # (1, H, W)
        if env.cleaner is not None:
            timings["frame_cleaner"] = time_call_both(lambda: env.cleaner.clean(context_idx[:, 1:], drawn), repeats)
        if env.reward_model is not None:
            drawn_rgb = env.world_model.to_rgb(drawn)                                # (1, H, W, 3)
            timings["reward_model"] = time_call_both(
                lambda: env._outcome(drawn_rgb, object_places(drawn_rgb.cpu().numpy())), repeats)
    return timings


def vector_steps_per_second(env: NeuralBreakoutEnv, num_envs: int, repeats: int, seed: int = 0) -> tuple[float, float]:
    """(wall, CPU) game steps per second of a gymnasium SyncVectorEnv of ``num_envs`` games that share
    ``env``'s models, each batch step counting ``num_envs`` game steps."""
    def make() -> NeuralBreakoutEnv:
        return NeuralBreakoutEnv(device=env.device, temperature=env.temperature, models=(env.world_model, env.mapper),
                                 cleaner=env.cleaner, reward_model=env.reward_model)

    envs = gym.vector.SyncVectorEnv([make for _ in range(num_envs)])
    envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    wall, cpu = time_call_both(lambda: envs.step(rng.integers(len(ACTION_NAMES), size=num_envs)), repeats)
    envs.close()
    return num_envs / wall, num_envs / cpu


# ------------------------------------------------------------------------------- screenshot

def free_display() -> str:
    for number in range(77, 200):
        if not Path(f"/tmp/.X{number}-lock").exists() and not Path(f"/tmp/.X11-unix/X{number}").exists():
            return f":{number}"
    raise RuntimeError("no free X display number")


def screenshot_window(path: str | os.PathLike, play_args: list[str], timeout_s: float = 120.0,
                      settle_steps_s: float = 2.0) -> None:
    """Run play_neural_breakout.py in a fresh Xvfb display and save a screenshot of the screen once the
    game's colours show (then ``settle_steps_s`` later, so the status line shows a few steps)."""
    from PIL import ImageGrab

    display = free_display()
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "640x760x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    play = None
    try:
        socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
        deadline = time.monotonic() + 10
        while not socket.exists():
            if time.monotonic() > deadline or xvfb.poll() is not None:
                raise RuntimeError(f"Xvfb did not start on {display}")
            time.sleep(0.1)
        env = {**os.environ, "DISPLAY": display, "SDL_VIDEODRIVER": "x11", "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(ROOT)}
        play = subprocess.Popen([sys.executable, "play_neural_breakout.py", "--max_steps", "100000", *play_args],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if play.poll() is not None:
                raise RuntimeError(f"play_neural_breakout.py exited {play.returncode}: {play.stderr.read()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the game window did not show within the time allowed")
            image = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
            if np.all(image == objects.BALL_PADDLE_RGB, axis=-1).sum() > 100:
                break
            time.sleep(0.2)
        time.sleep(settle_steps_s)
        picture = ImageGrab.grab(xdisplay=display)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        picture.save(path)
    finally:
        for proc in (play, xvfb):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


# ------------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint_dir", default=DEFAULT_CHECKPOINT_DIR,
                        help="trained weights; without them a random model of the default config is timed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--repeats", type=int, default=100, help="timed steps")
    parser.add_argument("--num_envs", type=int, default=8, help="games in the vector env (0: skip it)")
    parser.add_argument("--screenshot", default=None, help="save a screenshot of the play window under Xvfb here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    directory = checkpoint_folder(args.checkpoint_dir)
    trained = has_weights(directory)
    if trained:
        env = NeuralBreakoutEnv(directory, device=args.device, temperature=args.temperature)
        print(f"weights: trained, from {directory}")
    else:
        env = NeuralBreakoutEnv(device=args.device, temperature=args.temperature, models=random_models())
        print(f"weights: none in {directory}; timing a randomly initialised model of the default config")
    world = env.world_model.config
    print(f"world model: context {world.context_frames} frames, channels {world.channels}, fold {world.fold}, "
          f"{sum(p.numel() for p in env.world_model.decoder.parameters()) / 1e6:.2f} M decoder parameters; "
          f"mapper variant {getattr(env.mapper.config, 'variant', '?')}")
    print(f"device {env.device}, torch threads {torch.get_num_threads()}, temperature {args.temperature:g}")
    timing = time_steps(env, args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for clock, i in (("wall clock", 0), ("CPU time", 1)):
        parts = ", ".join(f"{name.replace('_', ' ')} {t[i] * 1e3:.1f} ms" for name, t in timing.items() if name != "step")
        print(f"game step, batch 1, {clock}: {timing['step'][i] * 1e3:.1f} ms/step = "
              f"{1 / timing['step'][i]:.0f} steps/s  ({parts})")
    if args.num_envs:
        wall, cpu = vector_steps_per_second(env, args.num_envs, max(1, args.repeats // args.num_envs))
        print(f"SyncVectorEnv of {args.num_envs} games: {wall:.0f} game steps/s wall clock, {cpu:.0f} by CPU time")
    print(f"load average {load:.1f} on {os.cpu_count()} cores: wall clock above CPU time means other work shared the cores")
    if trained:
        print("controllability and open loop against the emulator: python evaluate_world_model.py")
    env.close()
    if args.screenshot:
        play_args = ["--device", args.device] + (["--checkpoint_dir", str(directory)] if trained else [])
        if not trained:
            print("screenshot: skipped (play_neural_breakout.py needs trained weights; give --checkpoint_dir)")
            return
        screenshot_window(args.screenshot, play_args)
        print(f"screenshot of the play window under Xvfb: {args.screenshot}")


if __name__ == "__main__":
    run_main(main)
