"""One checkpoint format for every stage.

A checkpoint is a dict ``{"stage", "model", "config", "step", "metrics", ...extra}`` written to a
temporary file and renamed, and read back with ``weights_only=True``: it is data, never code."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import torch

from models.cli import UserError
from models.files import atomic_write

FORMAT_VERSION = 1
RETIRED_AT = "7751789"   # the last commit with the unshipped experiments' code (docs/results_log.md has their figures)
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "pretrained"  # the shipped weights


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable, or made for something else."""


def model_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of a module, without the ``_orig_mod.`` prefix torch.compile adds."""
    module = getattr(module, "_orig_mod", module)
    return {k.removeprefix("_orig_mod."): v.detach().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(path: str | os.PathLike, *, stage: str, model: torch.nn.Module | dict, config: Any,
                    step: int, metrics: dict[str, float] | None = None, **extra: Any) -> None:
    """Write a checkpoint atomically. ``config`` is a dataclass or a dict; ``extra`` holds more state
    (optimizer, other networks) made only of tensors, numbers, strings, lists and dicts."""
    state = model_state(model) if isinstance(model, torch.nn.Module) else model
    payload = {
        "format_version": FORMAT_VERSION,
        "stage": stage,
        "model": state,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config),
        "step": int(step),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        **extra,
    }
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


INFERENCE_KEYS = ("format_version", "stage", "model", "config", "step", "metrics", "run_config", "game")


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Write ``src`` to ``dst`` without what only resuming needs (optimizer state, other networks):
    the smaller file that ships for inference and loads like the original."""
    payload = load_checkpoint(src)
    atomic_write(dst, lambda tmp: torch.save({k: payload[k] for k in INFERENCE_KEYS if k in payload}, tmp))


def load_checkpoint(path: str | os.PathLike, stage: str | None = None, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint; raise CheckpointError with one sentence naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} could not be read (truncated or not a checkpoint): {reason[:200]}") from exc
    if not isinstance(payload, dict) or "model" not in payload or "stage" not in payload:
        raise CheckpointError(f"checkpoint {path} is not an Atari Pixels checkpoint (no 'stage'/'model' entries)")
    if stage is not None and payload["stage"] != stage:
        raise CheckpointError(f"checkpoint {path} belongs to stage '{payload['stage']}', not '{stage}'")
    return payload


def config_from_checkpoint(payload: dict, cls: type, path: str | os.PathLike = "checkpoint",
                           retired: dict[str, Any] | None = None) -> Any:
    """Rebuild a config dataclass from a checkpoint, refusing fields the class does not know.

    ``retired`` names fields of removed experiments with the value that meant "off": a checkpoint
    that stores them off still loads; one trained with them on is refused in one sentence."""
    config = dict(payload["config"])
    for name, off in (retired or {}).items():
        if name in config and config.pop(name) != off:
            raise CheckpointError(f"checkpoint {path} was trained with {name}, an experiment this version no longer "
                                  f"has (it was removed after commit {RETIRED_AT})")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(config) - names
    if unknown:
        raise CheckpointError(f"checkpoint {path} has config fields {sorted(unknown)} unknown to {cls.__name__}")
    return cls(**config)


def load_model(path: str | os.PathLike, stage: str, config_cls: type, build: Callable[[Any], torch.nn.Module],
               device: str | torch.device = "cpu", check: Callable[[Any], None] | None = None,
               payload: dict | None = None) -> torch.nn.Module:
    """Rebuild a stage's model from its checkpoint alone, in eval mode on ``device``: ``build`` makes it
    from the stored config, which ``check`` may refuse first (raising CheckpointError). A file of another
    stage, a config the class does not accept or weights that do not fit get one sentence naming the file.
    ``payload``: the file's contents, when the caller has read them already (``load_checkpoint``)."""
    payload = payload if payload is not None else load_checkpoint(path, stage=stage, map_location="cpu")
    try:
        cfg = config_from_checkpoint(payload, config_cls, path)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid {stage.replace('_', ' ')} config: {exc}") from exc
    if check is not None:
        check(cfg)
    model = build(cfg)
    load_state(model, payload["model"], path)
    return model.to(device).eval()


def load_state(module: torch.nn.Module, state: dict, path: str | os.PathLike = "checkpoint") -> None:
    """Load weights, turning a shape or key mismatch into one sentence that names what differs."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    resized = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing weights (first: {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weights (first: {unexpected[0]})")
    if resized:
        k = resized[0]
        problems.append(f"{k} has shape {tuple(state[k].shape)} in the file but {tuple(expected[k].shape)} in the model")
    if problems:
        raise CheckpointError(f"checkpoint {path} does not match the model it is loaded into: {'; '.join(problems)}")
    module.load_state_dict(state)
