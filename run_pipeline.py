"""Run the whole pipeline in order: agent, recordings, world model, pairs, action map, reward model, neural game, evaluation.

Each stage is the stage's own script, run as a user would run it. A stage whose output already exists
is skipped unless --force names it (or 'all'); the first failing stage stops the run with its own
message. Presets: 'tiny' (CI, about a minute), 'quick' (every stage end to end in a few minutes on a
CPU, under runs/quick/), 'full' (real training, into the default folders). The reward model is
Breakout's (its reward classes are Breakout's points): for another game that stage is left out."""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models import checkpoint
from models.cli import UserError, arg, parse_config, run_main
from models.neural_env import MAPPER_FILES, REWARD_FILE, WORLD_MODEL_FILES
from models.players import agent_file_name


@dataclass
class PipelineConfig:
    preset: Literal["tiny", "quick", "full"] = arg("quick", "how big a run: tiny (CI), quick (minutes on a CPU) or full")
    root: str = arg("", "folder for every output (default: runs/<preset> for tiny and quick, the repository for full)",
                    output="dir")
    force: list[str] = arg([], "stages to rerun even if their outputs exist ('all' for every stage)")
    stop_after: str = arg("", "stop after this stage")
    game: str = arg("Breakout", "Atari game")
    seed: int = arg(0, "seed passed to every stage")
    ship: bool = arg(False, "afterwards copy the agent, world model, action map and reward model into "
                            "checkpoints/pretrained/ (without optimizer state), where the neural game and the "
                            "recorder look first")


@dataclass
class Stage:
    name: str
    script: str
    args: list[str]
    output: Path  # the stage is done when this exists
    takes_game: bool = True  # the world model reads its game from the recordings' palette
    install: Path | None = None  # the output is also exported here, where the next stages look for it


SIZES = {
    "tiny": dict(dqn=["--preset", "quick", "--num_steps", "200", "--min_buffer", "100", "--eval_every", "200",
                      "--eval_episodes", "1", "--max_steps_per_episode", "200"],
                 record=["--total_videos", "3", "--percent_random", "34", "--percent_scripted", "33", "--max_steps", "120",
                         "--no-save_videos"],
                 world=["--preset", "tiny"], pairs=["--preset", "quick"],
                 mapper=["--preset", "quick", "--num_steps", "20", "--eval_every", "10", "--num_e2e", "20", "--sweep_sizes", "100"],
                 rewards=["--preset", "tiny"], game=["--steps", "10"],
                 evaluate=["--steps", "5", "--num_starts", "1"]),
    "quick": dict(dqn=["--preset", "quick"],
                  record=["--total_videos", "8", "--percent_random", "25", "--percent_scripted", "50", "--max_steps", "600",
                          "--no-save_videos"],
                  world=["--preset", "quick"], pairs=["--preset", "quick"], mapper=["--preset", "quick"],
                  rewards=["--num_steps", "300", "--eval_every", "100"], game=["--steps", "50"],
                  evaluate=["--steps", "20", "--num_starts", "2"]),
    "full": dict(dqn=[], record=["--total_videos", "200", "--percent_random", "15", "--percent_scripted", "30",
                                 "--action_noise", "0.05"],
                 world=[], pairs=["--live", "--live_player", "random_hold", "--num_live_games", "150"],
                 mapper=["--sweep"], rewards=[], game=["--compare"], evaluate=[]),
}


def stages(cfg: PipelineConfig, root: Path) -> tuple[list[Stage], list[str]]:
    """The stages in order, each reading what the one before wrote, and the flags every stage gets."""
    size = SIZES[cfg.preset]
    common = ["--seed", str(cfg.seed)]
    dqn_dir, data = root / "checkpoints" / "dqn", root / "data"
    world_dir, reward_dir = root / "checkpoints" / "latent_action", root / "checkpoints" / "reward_model"
    pairs = data / "actions" / "action_latent_pairs.json"
    return [
        Stage("agent", "train_dqn.py", [*size["dqn"], "--output_dir", str(dqn_dir)], dqn_dir / "best.pt"),
        Stage("record", "record_videos.py", ["--bulk", *size["record"], "--checkpoint_path", str(dqn_dir / "best.pt"),
                                             "--output_dir", str(data)], data / "manifest.json"),
        Stage("world_model", "train_latent_action.py", [*size["world"], "--data_dir", str(data / "episodes"),
                                                        "--checkpoint_dir", str(world_dir)], world_dir / "best.pt",
              takes_game=False),
        Stage("pairs", "collect_action_latent_pairs.py", [*size["pairs"], "--checkpoint_path", str(world_dir / "best.pt"),
                                                          "--episodes_dir", str(data / "episodes"), "--output_path", str(pairs)], pairs),
        Stage("action_map", "train_action_to_latent.py", [*size["mapper"], "--pairs_path", str(pairs), "--output_path",
                                                          str(world_dir / "action_to_latent_best.pt")],
              world_dir / "action_to_latent_best.pt"),
        *([Stage("rewards", "train_reward_model.py", [*size["rewards"], "--data_dir", str(data / "episodes"),
                                                      "--output_dir", str(reward_dir)],
                 reward_dir / "best.pt", takes_game=False, install=world_dir / REWARD_FILE)]
          if cfg.game == "Breakout" else []),
        Stage("neural_game", "neural_random_game.py", [*size["game"], "--checkpoint_dir", str(world_dir),
                                                       "--output", str(data / "neural_random_game.gif")],
              data / "neural_random_game.gif"),
        Stage("evaluate", "evaluate_world_model.py", [*size["evaluate"], "--checkpoint_dir", str(world_dir),
                                                      "--output_dir", str(data / "evaluation")],
              data / "evaluation" / "report.json"),
    ], common


def shipped_files(plan: list[Stage], game: str) -> dict[Path, str]:
    """The agent's, world model's, action map's and reward model's stage outputs -> their names in
    checkpoints/pretrained/."""
    outputs = {stage.name: stage.output for stage in plan}
    names = {"agent": agent_file_name(game), "world_model": WORLD_MODEL_FILES[0], "action_map": MAPPER_FILES[0],
             "rewards": REWARD_FILE}
    return {outputs[stage]: name for stage, name in names.items() if stage in outputs}


def ship(plan: list[Stage], game: str, destination: Path | None = None) -> None:
    """Export every trained checkpoint the plan has written into ``destination`` (checkpoints/pretrained/)."""
    destination = destination or checkpoint.PRETRAINED_DIR
    for src, name in shipped_files(plan, game).items():
        if not src.is_file():
            print(f"[ship] {src} does not exist; {destination / name} left as it is")
            continue
        checkpoint.export_checkpoint(src, destination / name)
        print(f"[ship] {src} -> {destination / name} ({(destination / name).stat().st_size / 1e6:.1f} MB)")


def run_stage(stage: Stage, common: list[str], game: str) -> float:
    """Run one stage's script, passing on the lines of its output that start with ``note:`` (what a
    stage does differently from what was asked, e.g. no scripted player for the game); on failure
    raise UserError carrying the stage's own last words."""
    command = [sys.executable, stage.script, *stage.args, *common, *(["--game", game] if stage.takes_game else [])]
    print(f"[{stage.name}] {' '.join(command[1:])}", flush=True)
    start = time.time()
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        last = [line for line in proc.stdout.replace("\r", "\n").splitlines() if line.strip()][-5:]
        raise UserError(f"stage '{stage.name}' failed (exit {proc.returncode}):\n  " + "\n  ".join(last))
    for line in proc.stdout.splitlines():
        if line.startswith("note: "):
            print(f"  {line}")
    return time.time() - start


def main() -> None:
    cfg = parse_config(PipelineConfig, __doc__.splitlines()[0])
    root = Path(cfg.root or ("." if cfg.preset == "full" else f"runs/{cfg.preset}"))
    plan, common = stages(cfg, root)
    names = [s.name for s in plan]
    unknown = [n for n in [*cfg.force, cfg.stop_after] if n and n not in names and n != "all"]
    if unknown[:1] == ["rewards"]:
        raise UserError(f"no 'rewards' stage for {cfg.game}: the reward model counts Breakout's points; "
                        f"stages: {', '.join(names)}")
    if unknown:
        raise UserError(f"unknown stage {unknown[0]!r}; stages: {', '.join(names)}")
    timings = []
    for stage in plan:
        forced = "all" in cfg.force or stage.name in cfg.force
        run = forced or not stage.output.exists()
        if run:
            timings.append((stage.name, run_stage(stage, common, cfg.game)))
        else:
            print(f"[{stage.name}] skipped: {stage.output} exists (--force {stage.name} reruns it)")
        if stage.install and (run or not stage.install.exists()):
            checkpoint.export_checkpoint(stage.output, stage.install)
        if stage.name == cfg.stop_after:
            break
    for name, seconds in timings:
        print(f"{name:12s} {seconds:7.1f} s")
    print(f"total        {sum(s for _, s in timings):7.1f} s; outputs under {root}")
    if cfg.ship:
        ship(plan, cfg.game)


if __name__ == "__main__":
    run_main(main)
