"""What the two debugging scripts compute, apart from their flags and printing.

- Colour channels (``debug_color_channels.py``): frames from several sources (the emulator, an
  episode file, PNGs, the world model) checked against the emulator's palette, to catch RGB/BGR
  mix-ups and frames scaled to 0-1 (the original saved BGR PNGs by mistake and fought colour bugs).
- The first step of a neural game (``debug_first_step_difference.py``): the latent the mapper gives
  an action against the latent the encoder reads from the emulator's real next frame, and the
  frames the world model decodes from each."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from models import breakout_objects as objects
from models import world_model_metrics as wm
from models.figures import pyplot, save_figure
from models.frame_dataset import rgb_keys
from models.neural_env import ACTION_NAMES, NeuralBreakoutEnv

MATCH_SHARE = 0.99   # share of pixels on the emulator's palette for a source to count as matching it


# ------------------------------------------------------------------------------- colour channels

@dataclass
class ColourCheck:
    """One source's frames against the emulator's palette."""
    name: str
    dtype: str
    shape: tuple[int, ...]
    value_min: float
    value_max: float
    scaled_0_1: bool              # floats no larger than 1: RGB divided by 255 somewhere
    channel_mean: list[float]     # R, G, B of the frames as read, before any rescaling
    channel_min: list[float]
    channel_max: list[float]
    palette: np.ndarray           # (K, 3) uint8 colours of the source (rescaled to 0-255 when scaled)
    extra: np.ndarray             # (E, 3) colours of the source missing from the reference palette
    missing: np.ndarray           # (M, 3) reference colours the source does not show
    on_palette: float             # share of pixels whose colour is in the reference palette
    on_palette_swapped: float     # the same with R and B swapped

    @property
    def verdict(self) -> str:
        return colour_verdict(self)


def to_uint8(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """Frames as uint8 0-255 and whether they were floats scaled to 0-1 (multiplied back by 255)."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames, False
    values = frames.astype(np.float64)
    scaled = np.issubdtype(frames.dtype, np.floating) and values.size > 0 and values.max() <= 1.0
    if scaled:
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8), bool(scaled)


def palette_of(frames: np.ndarray) -> np.ndarray:
    """(K, 3) uint8: the distinct colours of uint8 frames (..., 3), in key order."""
    keys = np.unique(rgb_keys(frames))
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=-1).astype(np.uint8)


def _on_palette(frames: np.ndarray, palette: np.ndarray) -> float:
    return float(np.isin(rgb_keys(frames), rgb_keys(palette)).mean())


def check_colours(name: str, frames: np.ndarray, reference: np.ndarray) -> ColourCheck:
    """Check ``frames`` (..., H, W, 3), any dtype, against ``reference`` (K, 3) uint8 (the emulator's palette)."""
    raw = np.asarray(frames)
    if raw.ndim < 3 or raw.shape[-1] != 3:
        raise ValueError(f"{name}: expected frames (..., H, W, 3), got shape {raw.shape}")
    flat = raw.reshape(-1, 3).astype(np.float64)
    image, scaled = to_uint8(raw)
    palette = palette_of(image)
    ref_keys, keys = rgb_keys(reference), rgb_keys(palette)
    return ColourCheck(
        name=name, dtype=str(raw.dtype), shape=tuple(raw.shape), value_min=float(flat.min()),
        value_max=float(flat.max()), scaled_0_1=scaled, channel_mean=flat.mean(0).tolist(),
        channel_min=flat.min(0).tolist(), channel_max=flat.max(0).tolist(), palette=palette,
        extra=palette[~np.isin(keys, ref_keys)], missing=reference[~np.isin(ref_keys, keys)],
        on_palette=_on_palette(image, reference), on_palette_swapped=_on_palette(image[..., ::-1], reference))


def colour_verdict(check: ColourCheck) -> str:
    """One line: the channel order, and the scaling when it is off."""
    if check.on_palette >= MATCH_SHARE:
        order = "RGB order matches"
    elif check.on_palette_swapped >= MATCH_SHARE:
        order = "looks BGR: swapping R and B puts it on the emulator's palette"
    else:
        order = (f"colours differ from the emulator's: {check.on_palette:.0%} of pixels on its palette "
                 f"({check.on_palette_swapped:.0%} with R and B swapped; lossy video or another game?)")
    if check.scaled_0_1:
        return f"values look scaled to 0-1 ({check.dtype}, max {check.value_max:.3g}); once multiplied by 255, {order}"
    if check.dtype != "uint8":
        return f"{check.dtype}, not uint8 (values {check.value_min:g}-{check.value_max:g}); {order}"
    return order


def describe(check: ColourCheck) -> list[str]:
    """A few lines of numbers about one source: dtype, range, per channel mean/min/max, palette."""
    def colours(c: np.ndarray) -> str:
        return " ".join(f"({r},{g},{b})" for r, g, b in c.tolist()) or "none"

    channels = ", ".join(f"{ch} mean {m:.1f} min {lo:g} max {hi:g}" for ch, m, lo, hi in
                         zip("RGB", check.channel_mean, check.channel_min, check.channel_max))
    return [f"{check.dtype} {check.shape}, values {check.value_min:g}-{check.value_max:g}",
            channels,
            f"{len(check.palette)} colours; on the emulator's palette: {check.on_palette:.1%} of pixels "
            f"({check.on_palette_swapped:.1%} with R and B swapped)",
            f"colours not in the emulator's: {colours(check.extra[:8])}{' ...' if len(check.extra) > 8 else ''}",
            f"emulator colours not shown: {colours(check.missing)}"]


def plot_channels(path: str | os.PathLike, sources: dict[str, np.ndarray]) -> None:
    """A PNG panel: one row per source (one frame of it), columns RGB as stored and R, G, B on a 0-255
    scale, so a frame scaled to 0-1 shows black and a BGR frame shows its red in the B column."""
    plt = pyplot()
    fig, axes = plt.subplots(len(sources), 4, figsize=(10, 3.4 * len(sources)), squeeze=False)
    for row, (name, frame) in zip(axes, sources.items()):
        values = np.asarray(frame, dtype=np.float64)
        row[0].imshow(np.clip(values, 0, 255).astype(np.uint8))
        row[0].set_title(f"{name}: as stored")
        for ax, ch, label in zip(row[1:], range(3), "RGB"):
            ax.imshow(values[..., ch], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{name}: {label}")
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


# ------------------------------------------------------------------------------- first step

@dataclass
class FrameComparison:
    psnr: float
    differing_pixels: int
    paddle_x: tuple[float, float]                   # (first, second) centre column, NaN: none
    ball: tuple[tuple[float, float], tuple[float, float]]  # (row, column) of each, NaN: none


def compare_frames(a: np.ndarray, b: np.ndarray) -> FrameComparison:
    """Two uint8 (H, W, 3) frames: PSNR, pixels that differ, and where each shows paddle and ball."""
    pair = np.stack([a, b])
    pos = objects.ball_position(pair)
    px = objects.paddle_x(pair)
    return FrameComparison(psnr=wm.psnr(a[None], b[None]), differing_pixels=int(np.any(a != b, axis=-1).sum()),
                           paddle_x=(float(px[0]), float(px[1])),
                           ball=(tuple(map(float, pos[0])), tuple(map(float, pos[1]))))


@dataclass
class FirstStep:
    """One action from real frames: the mapper's latent against the encoder's."""
    action: int
    context: np.ndarray        # (n, H, W, 3) uint8, the real start frames (as the model sees them; the last C are its context)
    real_next: np.ndarray      # (H, W, 3) uint8, the emulator's frame after the action
    mapped_codes: np.ndarray   # (L,) int64, the mapper's latent for the action
    encoder_codes: np.ndarray  # (L,) int64, the encoder's latent from the context and the real next frame
    from_mapped: np.ndarray    # (H, W, 3) uint8, the world model's frame from the mapped latent
    from_encoder: np.ndarray   # (H, W, 3) uint8, from the encoder's latent
    env_frame: np.ndarray | None = None  # (H, W, 3) uint8, what NeuralBreakoutEnv.step gives (first_step only)

    @property
    def differing_positions(self) -> np.ndarray:
        """Latent positions where the two latents differ."""
        return np.flatnonzero(self.mapped_codes != self.encoder_codes)

    def comparisons(self) -> dict[str, FrameComparison]:
        last = self.context[-1]
        return {"mapped vs encoder": compare_frames(self.from_mapped, self.from_encoder),
                "encoder vs real": compare_frames(self.from_encoder, self.real_next),
                "mapped vs real": compare_frames(self.from_mapped, self.real_next),
                "copy last frame vs real": compare_frames(last, self.real_next)}


@torch.inference_mode()
def decode_step(model: Any, mapper: Any, start: np.ndarray, real_next: np.ndarray, action: int,
                history: Sequence[int] = ()) -> FirstStep:
    """Decode one step from real ``start`` frames (n >= C, H, W, 3) both ways: with the mapper's latent
    for ``action`` (the actions before it in ``history``, oldest first; the map sees all n frames, the
    world model the last C) and with the encoder's latent for ``real_next`` (H, W, 3), the emulator's
    answer to it."""
    start_indices = model.to_indices(torch.from_numpy(start).to(model.device)[None]).to(torch.uint8)  # (1, n, H, W)
    indices = start_indices[:, -model.config.context_frames:]                                        # (1, C, H, W)
    context_rgb = model.to_rgb(start_indices)                                                        # (1, n, H, W, 3)
    target = model.to_indices(torch.from_numpy(real_next).to(model.device)[None]).to(torch.uint8)  # (1, H, W)
    mapped = mapper.sample_codes(torch.tensor([action], device=model.device), context_rgb,
                                 history=torch.tensor([list(history)], dtype=torch.long))        # (1, L)
    encoded = model.encode_latents(indices, target)                                                # (1, L)
    frames = [model.to_rgb(model.predict_next(indices, codes))[0].cpu().numpy() for codes in (mapped, encoded)]
    return FirstStep(action=action, context=context_rgb[0].cpu().numpy(), real_next=real_next,
                     mapped_codes=mapped[0].cpu().numpy().astype(np.int64),
                     encoder_codes=encoded[0].cpu().numpy().astype(np.int64),
                     from_mapped=frames[0], from_encoder=frames[1])


def first_step(env: NeuralBreakoutEnv, start: np.ndarray, real_next: np.ndarray, action: int,
               history: Sequence[int] = ()) -> FirstStep:
    """``decode_step`` after the actions in ``history`` (oldest first), plus the environment's own
    step, which at temperature 0 must equal the mapped frame."""
    step = decode_step(env.world_model, env.mapper, start, real_next, action, history)
    env.reset(options={"frames": start, "previous_actions": list(history)})
    step.env_frame = env.step(action)[0]
    return step


def plot_first_steps(path: str | os.PathLike, steps: Sequence[FirstStep]) -> None:
    """A PNG, one row per action: last context frame | real next | from the encoder's latent | from
    the mapped latent | where the two decoded frames differ (white)."""
    plt = pyplot()
    titles = ("context (last)", "real next", "from encoder latent", "from mapped latent", "mapped vs encoder")
    fig, axes = plt.subplots(len(steps), 5, figsize=(12.5, 3.4 * len(steps)), squeeze=False)
    for row, s in zip(axes, steps):
        differ = np.where(np.any(s.from_mapped != s.from_encoder, axis=-1), 255, 0).astype(np.uint8)
        for ax, image, title in zip(row, (s.context[-1], s.real_next, s.from_encoder, s.from_mapped, differ), titles):
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_title(f"{ACTION_NAMES[s.action]}: {title}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)
