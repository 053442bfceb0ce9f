"""Command-line plumbing shared by every script: flags built from a config dataclass, presets,
and turning user errors into one clear line and a non-zero exit."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem with the user's input (flags, files, checkpoints) that deserves one sentence."""


def arg(default: Any, help: str, aliases: tuple[str, ...] = (), output: Literal["dir", "file"] | None = None,
        **kwargs: Any) -> Any:
    """A dataclass field with a default and a one-line help text shown by --help; ``aliases`` are other
    flag names that set it (the original project's, or another stage's name for the same thing).
    ``output`` marks a folder or file the script writes: ``parse_config`` checks that it can be
    written before any work starts."""
    metadata = {"help": help, "aliases": tuple(aliases), "output": output}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def build_parser(cls: type, description: str, presets: dict[str, dict[str, Any]] | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per dataclass field (underscores kept, as in the original)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if presets:
        parser.add_argument("--preset", choices=sorted(presets), default=None,
                            help="a named set of defaults; flags given explicitly still win")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        flags = [f"--{name}" for name in (f.name, *f.metadata.get("aliases", ()))]
        if tp is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_text)
        elif typing.get_origin(tp) is Literal:
            parser.add_argument(*flags, choices=typing.get_args(tp), default=default, help=help_text)
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            parser.add_argument(*flags, type=item, nargs="+", default=default, help=help_text)
        else:
            parser.add_argument(*flags, type=tp, default=default, help=help_text)
    return parser


def parse_config(cls: type[T], description: str, argv: list[str] | None = None,
                 presets: dict[str, dict[str, Any]] | None = None) -> T:
    """Parse flags into ``cls``; a preset replaces defaults, explicit flags override the preset.

    Validation errors raised by the dataclass's ``__post_init__`` become argparse errors (exit 2)."""
    parser = build_parser(cls, description, presets)
    args = parser.parse_args(argv)
    values = vars(args)
    preset = values.pop("preset", None) if presets else None
    if preset:
        unknown = set(presets[preset]) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[index]
        assert not unknown, f"preset {preset} names unknown fields {unknown}"
        parser.set_defaults(**presets[preset])  # type: ignore[index]
        values = vars(parser.parse_args(argv))
        values.pop("preset", None)
    try:
        config = cls(**values)
    except (ValueError, UserError) as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
    for f in dataclasses.fields(cls):
        kind = f.metadata.get("output")
        if kind and getattr(config, f.name):
            check_writable(getattr(config, f.name), f"--{f.name}", is_dir=kind == "dir")
    return config


def check_writable(path: str | os.PathLike, what: str, is_dir: bool) -> None:
    """Raise UserError in one sentence when the folder ``path`` (or, for a file, its folder) cannot be
    made or written: a file stands where a folder must be, or there is no permission to write."""
    folder = Path(path) if is_dir else Path(path).parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {path} cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be written: no permission to write in {existing}")


def check_positive(config: Any, *names: str, allow_zero: bool = False) -> None:
    """Raise ValueError naming the first field that is negative (or zero unless allowed)."""
    for name in names:
        value = getattr(config, name)
        if value < 0 or (value == 0 and not allow_zero):
            bound = "zero or more" if allow_zero else "positive"
            raise ValueError(f"--{name} must be {bound}, got {value}")


@dataclasses.dataclass
class RunFlags:
    """The flags training scripts share: a training config inherits them and adds its own."""
    eval_every: int = arg(500, "steps between validations (and best.pt updates)")
    save_every: int = arg(250, "steps between writes of latest.pt")
    log_every: int = arg(25, "steps between rows of training metrics")
    split_seed: int = arg(0, "seed of the train/val/test split of the games")
    seed: int = arg(0, "seed of the weights, the sampling and anything else drawn at random")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")
    resume: bool = arg(False, "continue from latest.pt in --output_dir")
    wandb: bool = arg(False, "also log to Weights & Biases")

    def __post_init__(self) -> None:
        check_positive(self, "eval_every", "save_every", "log_every")
        check_positive(self, "threads", allow_zero=True)


def run_main(main: Callable[[], Any]) -> None:
    """Run a script's main(); user errors print one line to stderr and exit with status 1."""
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; outputs written so far are complete", file=sys.stderr)
        sys.exit(130)
