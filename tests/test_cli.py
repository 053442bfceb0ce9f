from dataclasses import dataclass
from typing import Literal

import pytest

from models.cli import arg, check_positive, parse_config


@dataclass
class Config:
    steps: int = arg(10, "how many steps", aliases=("iterations",))
    rate: float = arg(0.5, "a rate")
    mode: Literal["a", "b"] = arg("a", "a mode")
    flag: bool = arg(False, "a switch")
    path: str | None = arg(None, "an optional path")

    def __post_init__(self):
        check_positive(self, "steps")


PRESETS = {"quick": {"steps": 2, "rate": 0.1}}


def test_defaults_and_types():
    cfg = parse_config(Config, "t", [])
    assert cfg == Config()
    cfg = parse_config(Config, "t", ["--steps", "7", "--rate", "2", "--mode", "b", "--flag", "--path", "x"])
    assert (cfg.steps, cfg.rate, cfg.mode, cfg.flag, cfg.path) == (7, 2.0, "b", True, "x")


def test_an_alias_sets_the_same_field_and_help_names_both(capsys):
    assert parse_config(Config, "t", ["--iterations", "4"]).steps == 4
    with pytest.raises(SystemExit):
        parse_config(Config, "t", ["--help"])
    assert "--steps STEPS, --iterations STEPS" in capsys.readouterr().out


def test_preset_sets_defaults_but_explicit_flags_win():
    cfg = parse_config(Config, "t", ["--preset", "quick", "--steps", "5"], presets=PRESETS)
    assert cfg.steps == 5 and cfg.rate == 0.1


def test_bad_values_exit_with_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_config(Config, "t", ["--steps", "-3"])
    assert exc.value.code == 2
    assert "--steps must be positive, got -3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(Config, "t", ["--mode", "c"])
