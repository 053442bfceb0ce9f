"""Compare the colour channels of emulator, saved and model frames, to catch RGB/BGR and scaling bugs.

    python debug_color_channels.py [--episode data/episodes/game_00000.npz] [--frames_dir data/frames/game_00000]

Sources: the emulator (the reference), an episode file, the PNGs of record_videos.py --save_frames
and one world-model step from the emulator's frames; a source left empty is looked for in its usual
place and skipped when absent. For each: dtype and range, per channel mean/min/max, its colours
against the emulator's palette, and whether swapping R and B would make them agree; then one
verdict line per source. Writes a PNG panel of each source and each channel."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from models import debug_tools as dbg
from models.atari import make_rgb_env
from models.cli import UserError, arg, check_positive, parse_config, run_main
from models.episodes import list_episode_files, load_episode
from models.neural_env import DEFAULT_CHECKPOINT_DIR, NOOP, NeuralBreakoutEnv, real_start
from models.runtime import pick_device
from models.world_model_evaluation import checkpoint_files

DEFAULT_EPISODES = "data/episodes"


@dataclass
class ColorConfig:
    episode: str = arg("", f"an episode file (.npz); empty: the first game in {DEFAULT_EPISODES}, if any")
    frames_dir: str = arg("", "a folder of PNG frames; empty: the episode's folder written by record_videos.py "
                              "--save_frames (data/frames/game_XXXXX), if any")
    checkpoint_dir: str = arg("", f"world model and mapper for the model's frame; empty: {DEFAULT_CHECKPOINT_DIR} "
                                  "if it holds trained weights")
    output: str = arg("data/debug_color_channels.png", "the PNG panel (each source, each channel)")
    num_frames: int = arg(16, "frames read from each source (spread over the game)")
    seed: int = arg(0, "seed of the emulator's real start")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    game: str = arg("Breakout", "Atari game of the emulator")

    def __post_init__(self) -> None:
        check_positive(self, "num_frames")
        check_positive(self, "seed", allow_zero=True)


def spread(length: int, count: int) -> np.ndarray:
    """Indices of ``count`` items spread evenly over ``length`` (all of them when there are fewer)."""
    return np.unique(np.linspace(0, length - 1, count).round().astype(int))


def episode_path(config: ColorConfig) -> Path | None:
    if config.episode:
        return Path(config.episode)
    return list_episode_files(DEFAULT_EPISODES)[0] if Path(DEFAULT_EPISODES).is_dir() else None


def png_frames(folder: Path, count: int) -> np.ndarray:
    """PNGs of a folder, read as stored (imageio gives the file's own channel order): (n, H, W, 3)."""
    files = sorted(folder.glob("*.png"))
    if not files:
        raise UserError(f"frames folder {folder} holds no PNG files")
    return np.stack([iio.imread(files[i])[..., :3] for i in spread(len(files), count)])


def model_frame(config: ColorConfig) -> np.ndarray | None:
    """One world-model step (NOOP) from a seeded real start of as many frames as the model needs, or
    None when no weights are found."""
    directory = config.checkpoint_dir or DEFAULT_CHECKPOINT_DIR
    if not config.checkpoint_dir and None in checkpoint_files(directory).values():
        return None
    env = NeuralBreakoutEnv(directory, device=pick_device(config.device))
    try:
        env.reset(seed=config.seed)
        return env.step(NOOP)[0][None]
    finally:
        env.close()


def png_folder(config: ColorConfig, episode: Path | None) -> Path | None:
    """--frames_dir (which must exist), else the episode's PNG folder when record_videos.py wrote one."""
    if config.frames_dir:
        folder = Path(config.frames_dir)
        if not folder.is_dir():
            raise UserError(f"frames folder {folder} does not exist")
        return folder
    folder = episode.parent.parent / "frames" / episode.stem if episode is not None else None
    return folder if folder is not None and folder.is_dir() else None


def main(argv: list[str] | None = None) -> None:
    config = parse_config(ColorConfig, __doc__.splitlines()[0], argv)
    episode = episode_path(config)
    pngs = png_folder(config, episode)
    emulator = make_rgb_env(config.game)
    emulator_frames = real_start(emulator, config.num_frames, config.seed)  # (n, H, W, 3)
    emulator.close()
    sources = {"emulator": emulator_frames}
    skipped = []
    if episode is None:
        skipped.append(f"episode: none given and no games in {DEFAULT_EPISODES}")
    else:
        frames = load_episode(episode).frames
        sources["episode"] = frames[spread(len(frames), config.num_frames)]
    if pngs is None:
        skipped.append("png: no frames folder (record_videos.py --save_frames writes one)")
    else:
        sources["png"] = png_frames(pngs, config.num_frames)
    model = model_frame(config)
    if model is None:
        skipped.append(f"model: no trained weights in {DEFAULT_CHECKPOINT_DIR} (give --checkpoint_dir)")
    else:
        sources["model"] = model
    reference = dbg.palette_of(emulator_frames)
    checks = [dbg.check_colours(name, frames, reference) for name, frames in sources.items()]
    for check in checks:
        print(f"{check.name}:")
        print("\n".join(f"  {line}" for line in dbg.describe(check)))
    dbg.plot_channels(config.output, {name: frames[-1] for name, frames in sources.items()})
    print("verdicts:")
    for check in checks:
        print(f"  {check.name}: {check.verdict}")
    for line in skipped:
        print(f"  skipped {line}")
    print(f"channels panel: {config.output}")


if __name__ == "__main__":
    run_main(main)
