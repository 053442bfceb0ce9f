from dataclasses import dataclass

import numpy as np
import pytest
import torch

from models.action_to_latent import load_action_mapper
from models.checkpoint import (PRETRAINED_DIR, CheckpointError, config_from_checkpoint,
                               export_checkpoint, load_checkpoint, load_state, save_checkpoint)
from models.dqn import load_policy
from models.latent_action import load_latent_action_model


@dataclass
class NetConfig:
    width: int = 3


def test_round_trip_keeps_weights_config_step_and_metrics(tmp_path):
    net = torch.nn.Linear(3, 2)
    path = tmp_path / "a" / "net.pt"
    save_checkpoint(path, stage="toy", model=net, config=NetConfig(), step=12, metrics={"score": 4}, note="x")
    payload = load_checkpoint(path, stage="toy")
    assert payload["step"] == 12 and payload["metrics"] == {"score": 4.0} and payload["note"] == "x"
    assert config_from_checkpoint(payload, NetConfig) == NetConfig()
    other = torch.nn.Linear(3, 2)
    load_state(other, payload["model"])
    assert torch.equal(other.weight, net.weight)
    assert [p.name for p in path.parent.iterdir()] == ["net.pt"]  # no temporary file left behind


def test_compiled_prefix_is_stripped(tmp_path):
    net = torch.nn.Linear(3, 2)
    wrapper = torch.nn.Module()
    wrapper._orig_mod = net  # what torch.compile's OptimizedModule looks like
    save_checkpoint(tmp_path / "c.pt", stage="toy", model=wrapper, config={}, step=0)
    assert set(load_checkpoint(tmp_path / "c.pt")["model"]) == {"weight", "bias"}


def test_missing_truncated_foreign_and_wrong_stage_files_get_one_sentence(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    save_checkpoint(tmp_path / "ok.pt", stage="dqn", model=torch.nn.Linear(2, 2), config={}, step=0)
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an Atari Pixels checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="belongs to stage 'dqn', not 'latent_action'"):
        load_checkpoint(tmp_path / "ok.pt", stage="latent_action")


def test_mismatched_weights_and_config_are_refused(tmp_path):
    save_checkpoint(tmp_path / "n.pt", stage="toy", model=torch.nn.Linear(3, 2), config={"depth": 2}, step=0)
    payload = load_checkpoint(tmp_path / "n.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_state(torch.nn.Linear(4, 2), payload["model"])
    with pytest.raises(CheckpointError, match="unknown to NetConfig"):
        config_from_checkpoint(payload, NetConfig)


def test_code_in_a_checkpoint_is_not_executed(tmp_path):
    torch.save({"stage": "dqn", "model": {}, "obj": NetConfig()}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_checkpoint(tmp_path / "pickled.pt")


def test_export_drops_resume_state_and_loads_the_same(tmp_path):
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "latest.pt", stage="toy", model=net, config=NetConfig(), step=5,
                    optimizer=optimizer.state_dict(), run_config={"lr": 1e-3}, game="Pong")
    export_checkpoint(tmp_path / "latest.pt", tmp_path / "shipped" / "net.pt")
    shipped = load_checkpoint(tmp_path / "shipped" / "net.pt", stage="toy")
    assert "optimizer" not in shipped and shipped["step"] == 5 and shipped["run_config"] == {"lr": 1e-3}
    assert shipped["game"] == "Pong"                                    # the game it was trained on stays
    assert torch.equal(shipped["model"]["weight"], net.weight.detach())
    with pytest.raises(CheckpointError, match="does not exist"):
        export_checkpoint(tmp_path / "nowhere.pt", tmp_path / "x.pt")


def test_the_shipped_weights_load_with_their_stages_loaders() -> None:
    world = load_latent_action_model(PRETRAINED_DIR / "latent_action.pt")
    mapper = load_action_mapper(PRETRAINED_DIR / "action_to_latent.pt", latent_config=world.config)
    assert mapper.config.num_codes == world.config.num_codes == 32
    policy = load_policy(PRETRAINED_DIR / "dqn_breakout.pt")
    assert policy.act(np.zeros((2, 8, 84, 84), np.uint8)).shape == (2,)
