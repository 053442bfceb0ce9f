"""Where computation runs and how runs are made repeatable."""
from __future__ import annotations

import random

import numpy as np
import torch

from models.cli import UserError


def pick_device(name: str = "auto") -> torch.device:
    """CUDA if present, else MPS, else CPU; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"unknown device {name!r} (use auto, cpu, cuda or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps was asked for but MPS is not available")
    return device


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, numpy and torch; return a numpy generator for the caller's own sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)
