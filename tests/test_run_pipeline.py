"""The smallest pipeline end to end, so a change that breaks the chain between stages cannot land."""
from pathlib import Path

from models.latent_action import load_latent_action_model

OUTPUTS = ["checkpoints/dqn/best.pt", "data/manifest.json", "checkpoints/latent_action/best.pt",
           "data/actions/action_latent_pairs.json", "checkpoints/latent_action/action_to_latent_best.pt",
           "checkpoints/reward_model/best.pt", "data/neural_random_game.gif", "data/evaluation/report.json"]
NOT_BREAKOUT = "checkpoints/reward_model/best.pt"   # the reward model's classes are Breakout's points


def test_tiny_pipeline_runs_every_stage_then_skips_them(script, tmp_path: Path):
    first = script("run_pipeline.py", "--preset", "tiny", "--root", str(tmp_path), timeout=900)
    assert all((tmp_path / p).exists() for p in OUTPUTS), first.stdout
    again = script("run_pipeline.py", "--preset", "tiny", "--root", str(tmp_path))
    assert again.stdout.count("skipped") == len(OUTPUTS)

    import torch

    from models.neural_env import NeuralBreakoutEnv
    from run_pipeline import PipelineConfig, ship, stages
    shipped = tmp_path / "shipped"
    ship(stages(PipelineConfig(preset="tiny"), tmp_path)[0], "Breakout", destination=shipped)
    assert sorted(p.name for p in shipped.iterdir()) == ["action_to_latent.pt", "dqn_breakout.pt", "latent_action.pt",
                                                         "reward_model.pt"]
    for path in shipped.iterdir():
        payload = torch.load(path, weights_only=True)
        assert "optimizer" not in payload and payload["model"]  # weights kept, resume state dropped
    env = NeuralBreakoutEnv(checkpoint_dir=shipped)  # the shipped files load as the game loads them
    frame = env.reset(seed=0)[0]
    assert env.step(2)[0].shape == frame.shape and env.reward_model is not None
    # the pipeline's own neural game stage found the reward model beside the world model
    assert (tmp_path / "checkpoints/latent_action/reward_model.pt").is_file()


def test_tiny_pipeline_runs_on_a_game_with_no_scripted_player(script, tmp_path: Path):
    proc = script("run_pipeline.py", "--preset", "tiny", "--game", "Pong", "--root", str(tmp_path), timeout=900)
    assert all((tmp_path / p).exists() for p in OUTPUTS if p != NOT_BREAKOUT), proc.stdout
    assert not (tmp_path / NOT_BREAKOUT).exists() and "[rewards]" not in proc.stdout
    assert "  note: no scripted player for Pong: its 33% of the games go to the agent" in proc.stdout.splitlines()
    assert load_latent_action_model(tmp_path / "checkpoints/latent_action/best.pt").game == "Pong"


def test_unknown_stage_and_failing_stage_stop_with_one_message(script, tmp_path: Path):
    proc = script("run_pipeline.py", "--force", "wold_model", check=False)
    assert proc.returncode == 1 and "unknown stage 'wold_model'" in proc.stderr
    proc = script("run_pipeline.py", "--game", "Pong", "--stop_after", "rewards", check=False)
    assert proc.returncode == 1 and "no 'rewards' stage for Pong: the reward model counts Breakout's points" in proc.stderr
    proc = script("run_pipeline.py", "--preset", "tiny", "--root", str(tmp_path), "--game", "Pacmann", check=False)
    assert proc.returncode == 1 and "stage 'agent' failed" in proc.stderr and "unknown game 'Pacmann'" in proc.stderr


def test_a_stage_passes_on_its_notes_and_keeps_the_rest_to_itself(tmp_path: Path, capsys):
    from run_pipeline import Stage, run_stage
    stage_script = tmp_path / "stage.py"
    stage_script.write_text('print("a progress line")\nprint("note: no scripted player for Pong: its 50% go to the agent")\n')
    run_stage(Stage("record", str(stage_script), [], tmp_path / "out", takes_game=False), [], "Pong")
    assert capsys.readouterr().out.splitlines()[1:] == ["  note: no scripted player for Pong: its 50% go to the agent"]
