from dataclasses import dataclass
from typing import Literal

import pytest

from models.cli import UserError, arg, check_positive, parse_config


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


@dataclass
class Outputs:
    folder: str = arg("out", "a folder written", output="dir")
    report: str = arg("out/report.json", "a file written", output="file")


def test_outputs_that_cannot_be_written_get_one_sentence(tmp_path, monkeypatch):
    (tmp_path / "taken").write_text("a file where a folder must go")
    assert parse_config(Outputs, "t", ["--folder", str(tmp_path / "new" / "deeper")]).folder.endswith("deeper")
    assert not (tmp_path / "new").exists()                      # checked, not made: nothing is written early
    with pytest.raises(UserError, match=f"^--folder {tmp_path / 'taken' / 'run'} cannot be written: "
                                        f"{tmp_path / 'taken'} is a file, not a folder$"):
        parse_config(Outputs, "t", ["--folder", str(tmp_path / "taken" / "run")])
    with pytest.raises(UserError, match="--report .* cannot be written: .*taken is a file, not a folder"):
        parse_config(Outputs, "t", ["--folder", str(tmp_path), "--report", str(tmp_path / "taken" / "r.json")])
    monkeypatch.setattr("models.cli.os.access", lambda path, mode: False)   # as a user without the right
    with pytest.raises(UserError, match=f"cannot be written: no permission to write in {tmp_path}$"):
        parse_config(Outputs, "t", ["--folder", str(tmp_path / "new")])
