"""Tests for models/action_to_latent.py and train_action_to_latent.py: the map's shapes and sampling, a
synthetic problem with a known answer, refusing a map made for another latent shape, the end-to-end
check through a (tiny, untrained) world model, and the script itself."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.action_pairs import PairSet, concat_pairs, write_pairs
from models.action_to_latent import (ActionToLatent, ActionToLatentConfig, PairTensors, TrainSettings, end_to_end,
                                     evaluate_mapper, load_action_mapper, mapper_config, pool_frames, split_pairs,
                                     train_mapper)
from models.checkpoint import CheckpointError, save_checkpoint
from models.cli import UserError, parse_config
from models.latent_action import LatentActionModel, model_config
from synthetic_pairs import H, NAMES, PALETTE, W, synthetic_pairs

torch.set_num_threads(1)


def train_on(pairs: PairSet, variant: str, steps: int = 300, action_history: int = 2,
             labelled: np.ndarray | None = None, unlabelled: np.ndarray | None = None, offset_penalty: float = 0.0):
    """Train on the training games' pairs (or just ``labelled``, and ``unlabelled`` for a marginal map)."""
    cfg = mapper_config(variant, pairs, state_pool=[2, 2], state_channels=[8, 16], hidden=32,
                        action_history=action_history, marginal=unlabelled is not None)
    data = PairTensors(pairs, cfg)
    split = split_pairs(pairs.game_index, 0.2, seed=0)
    result = train_mapper(cfg, data, split.train if labelled is None else labelled, split.val,
                          TrainSettings(num_steps=steps, batch_size=64, learning_rate=3e-3, eval_every=50,
                                        offset_penalty=offset_penalty),
                          unlabelled_idx=unlabelled)
    return result, evaluate_mapper(result.mapper, data, split.val)


# ----------------------------------------------------------------------------------- the map

@pytest.mark.parametrize("variant", ["action", "action_state"])
def test_output_shapes_of_both_variants(variant: str) -> None:
    cfg = ActionToLatentConfig(variant=variant, num_actions=4, num_latents=3, num_codes=7, context_frames=4,
                               state_frames=2, state_channels=[4, 8], hidden=16, action_history=2)
    mapper = ActionToLatent(cfg).eval()
    actions = torch.tensor([0, 1, 2, 3, 3])
    context = torch.randint(0, 256, (5, 4, 210, 160, 3), dtype=torch.uint8)
    pooled = mapper.state_from_context(context) if variant == "action_state" else None
    if pooled is not None:
        assert pooled.shape == (5, 2, 3, 42, 40) and pooled.dtype == torch.uint8
    history = torch.tensor([[0, 3], [1, 0], [2, 1], [3, 2], [2, 2]])
    assert mapper(actions, pooled, history).shape == (5, 3, 7)
    codes = mapper.sample_codes(actions, context if variant == "action_state" else None, history=history)
    assert codes.shape == (5, 3) and codes.dtype == torch.int64 and codes.max() < 7


def test_temperature_zero_is_argmax_and_sampling_is_seeded() -> None:
    cfg = ActionToLatentConfig(variant="action", num_actions=4, num_latents=2, num_codes=5)
    mapper = ActionToLatent(cfg).eval()
    actions = torch.arange(4).repeat(50)
    logits = mapper(actions)
    assert torch.equal(mapper.sample_codes(actions, temperature=0.0), logits.argmax(-1))
    draw = lambda seed: mapper.sample_codes(actions, temperature=5.0, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), logits.argmax(-1))  # a hot temperature leaves the argmax


def test_bad_inputs_to_the_map_are_refused() -> None:
    mapper = ActionToLatent(ActionToLatentConfig(context_frames=2, state_frames=2, state_channels=[4], hidden=8,
                                             action_history=2)).eval()
    with pytest.raises(ValueError, match="needs the context frames"):
        mapper.sample_codes(torch.tensor([0]))
    with pytest.raises(ValueError, match="context must be uint8 RGB"):
        mapper.sample_codes(torch.tensor([0]), torch.zeros(1, 2, 200, 160, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="context must be uint8 RGB"):
        mapper.sample_codes(torch.tensor([0]), torch.zeros(1, 2, 210, 160, 3))
    with pytest.raises(ValueError, match="actions must lie in"):
        mapper.sample_codes(torch.tensor([4]), torch.zeros(1, 2, 210, 160, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="earlier actions must lie in"):
        mapper.sample_codes(torch.tensor([0]), torch.zeros(1, 2, 210, 160, 3, dtype=torch.uint8),
                            history=torch.tensor([[7]]))
    with pytest.raises(ValueError, match=r"needs the 2 earlier actions, \(B, 2\)"):
        mapper(torch.tensor([0]), mapper.state_from_context(torch.zeros(1, 2, 210, 160, 3, dtype=torch.uint8)))
    with pytest.raises(ValueError, match="state_frames must be positive"):
        ActionToLatentConfig(context_frames=1, state_frames=0)


def test_a_map_can_look_further_back_than_the_world_model() -> None:
    """More state frames than context: the pairs before in the same game give the older frames,
    a game's first frame stands in before its start, and so does the oldest of too few given frames."""
    context = np.array([[0, 1], [1, 2], [2, 3], [10, 10], [10, 11]])   # two games, contexts of 2 frames
    pairs = PairSet(actions=np.zeros(5, np.int64), codes=np.zeros((5, 1), np.int64), frames=np.zeros((12, 2, 2), np.uint8),
                    palette=np.zeros((1, 3), np.uint8), context_index=context, next_index=context[:, 1] + 1,
                    game_index=np.array([0, 0, 0, 1, 1]))
    assert pairs.state_index(2).tolist() == context.tolist()
    assert pairs.state_index(4).tolist() == [[0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 2, 3], [10, 10, 10, 10], [10, 10, 10, 11]]
    mapper = ActionToLatent(ActionToLatentConfig(context_frames=2, state_frames=3, state_channels=[4], hidden=8)).eval()
    frames = torch.randint(0, 256, (1, 2, 210, 160, 3), dtype=torch.uint8)
    padded = torch.cat([frames[:, :1], frames], dim=1)
    assert torch.equal(mapper.state_from_context(frames), mapper.state_from_context(padded))
    assert not torch.equal(mapper.state_from_context(frames), mapper.state_from_context(frames[:, 1:]))


def test_sampling_reads_the_last_actions_and_pads_with_noop() -> None:
    cfg = ActionToLatentConfig(context_frames=2, state_frames=2, state_channels=[4], hidden=8, action_history=2)
    mapper = ActionToLatent(cfg).eval()
    seen = []
    mapper.state_net.register_forward_hook(lambda module, args, out: seen.append(args[1].tolist()))
    context = torch.zeros(1, 2, 210, 160, 3, dtype=torch.uint8)
    for history in (torch.tensor([[2, 3, 1, 3]]), torch.tensor([[3]]), None):
        mapper.sample_codes(torch.tensor([0]), context, history=history)
    assert seen == [[[1, 3]], [[0, 3]], [[0, 0]]]


def test_pooling_averages_blocks_and_rounds() -> None:
    rgb = torch.zeros(1, 4, 4, 3, dtype=torch.uint8)
    rgb[0, 0, 0] = torch.tensor([200, 72, 10])
    pooled = pool_frames(rgb, [2, 2])                                # (1, 3, 2, 2)
    assert pooled.shape == (1, 3, 2, 2)
    assert pooled[0, :, 0, 0].tolist() == [50, 18, 2] and pooled[0, :, 1, 1].tolist() == [0, 0, 0]


def test_known_mapping_is_learned_exactly() -> None:
    pairs = synthetic_pairs()
    _, ev = train_on(pairs, "action_state")
    assert ev.metrics["accuracy"] == 1.0 and ev.metrics["step_accuracy"] == 1.0
    assert all(ev.metrics[f"accuracy_{n}"] == 1.0 for n in NAMES)
    # The action alone cannot see the walls: it must miss exactly the blocked moves.
    _, ev_action = train_on(pairs, "action", steps=200)
    split = split_pairs(pairs.game_index, 0.2, seed=0)
    a, code = pairs.actions[split.val], pairs.codes[split.val, 0]
    blocked = ((a == 2) | (a == 3)) & (code == 1)
    assert ev_action.metrics["accuracy"] == pytest.approx(1 - blocked.mean())


def test_a_late_control_is_learned_only_with_the_previous_action() -> None:
    """Codes that depend on the action before, which no frame shows (Breakout's paddle finishes the
    last move during the next step): seen with the previous action, the map is exact; without it, it
    can do no better than guess the most common previous action."""
    pairs = synthetic_pairs()
    pairs.codes = (4 * pairs.action_history(1)[:, 0] + pairs.actions)[:, None]
    pairs.metadata = dict(pairs.metadata, num_codes=16)
    _, ev = train_on(pairs, "action_state", steps=400)
    assert ev.metrics["accuracy"] == 1.0
    _, ev_blind = train_on(pairs, "action_state", steps=400, action_history=0)
    assert ev_blind.metrics["accuracy"] < 0.4


def state_coded_pairs() -> PairSet:
    """Codes the state decides, as most of Breakout's are: the paddle's column (0-3), except that a
    RIGHT always gets code 4."""
    pairs = synthetic_pairs()
    column = pairs.frames[pairs.context_index[:, -1], H - 2].argmax(1) // 4
    pairs.codes = np.where(pairs.actions == 2, 4, column)[:, None]
    return pairs


def test_unlabelled_pairs_teach_the_state_that_few_labels_do_not_show() -> None:
    """16 labelled pairs cannot show every action at every paddle column; the training games' other
    pairs, their actions unused, teach the state, and with the offset penalty the map is exact. Without
    the penalty, a code met by the few NOOPs can become NOOP's everywhere."""
    pairs = state_coded_pairs()
    train = split_pairs(pairs.game_index, 0.2, seed=0).train
    labelled = np.sort(np.random.default_rng(0).choice(train, 16, replace=False))
    unlabelled = np.setdiff1d(train, labelled)
    _, ev_few = train_on(pairs, "action_state", labelled=labelled)
    assert ev_few.metrics["accuracy"] < 0.8
    result, ev = train_on(pairs, "action_state", labelled=labelled, unlabelled=unlabelled, offset_penalty=0.1)
    assert ev.metrics["accuracy"] >= 0.95
    assert result.mapper.unknown_action == 4


def test_training_never_reads_the_actions_of_unlabelled_pairs() -> None:
    pairs = state_coded_pairs()
    cfg = mapper_config("action_state", pairs, state_pool=[2, 2], state_channels=[4], hidden=8, marginal=True)
    split = split_pairs(pairs.game_index, 0.2, seed=0)
    labelled, unlabelled = split.train[:30], split.train[30:]
    weights = []
    for scramble in (False, True):
        data = PairTensors(pairs, cfg)
        if scramble:
            data.actions[unlabelled] = (data.actions[unlabelled] + 1) % 4
            data.history[unlabelled] = (data.history[unlabelled] + 2) % 4
        result = train_mapper(cfg, data, labelled, split.val, TrainSettings(num_steps=20, batch_size=16, eval_every=10),
                              unlabelled_idx=unlabelled)
        weights.append(result.mapper.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    with pytest.raises(ValueError, match="needs unlabelled pairs"):
        train_mapper(cfg, PairTensors(pairs, cfg), labelled, split.val, TrainSettings(num_steps=1))


def test_a_marginal_map_offsets_every_action_from_the_unknown_one() -> None:
    cfg = ActionToLatentConfig(context_frames=2, state_frames=2, state_channels=[4], hidden=8, num_codes=5,
                               marginal=True, action_history=2)
    mapper = ActionToLatent(cfg).eval()
    pooled = mapper.state_from_context(torch.randint(0, 256, (3, 2, 210, 160, 3), dtype=torch.uint8))
    unknown = torch.full((3,), mapper.unknown_action)
    history = torch.full((3, 2), mapper.unknown_action)
    last = mapper.state_net.head[-1]
    with torch.no_grad():   # zero offsets: every action is the unknown one
        last.weight.view(5, 1, 5, -1)[:4] = 0
        last.bias.view(5, 1, 5)[:4] = 0
    for action in range(4):
        assert torch.equal(mapper(torch.full((3,), action), pooled, history), mapper(unknown, pooled, history))
    assert mapper(unknown, pooled, history).shape == (3, 1, 5)
    with pytest.raises(ValueError, match="marginal"):
        ActionToLatent(ActionToLatentConfig(context_frames=2, state_frames=2)).unknown_action
    with pytest.raises(ValueError, match="needs the action_state variant"):
        ActionToLatentConfig(variant="action", marginal=True)


def test_collections_of_pairs_join_with_their_games_kept_apart() -> None:
    a, b = synthetic_pairs(num_games=2, steps=10, seed=1), synthetic_pairs(num_games=3, steps=7, seed=2)
    both = concat_pairs([a, b])
    assert len(both) == len(a) + len(b) and np.unique(both.game_index).size == 5
    assert np.array_equal(both.frames[both.context_index[len(a):]], b.frames[b.context_index])
    assert np.array_equal(both.frames[both.next_index[:len(a)]], a.frames[a.next_index])
    assert np.array_equal(both.action_history(2)[len(a):], b.action_history(2))  # no history leaks across sets
    cfg = mapper_config("action_state", a, state_pool=[2, 2], action_history=2)
    joined, copied, idx = PairTensors([a, b], cfg), PairTensors(both, cfg), torch.arange(len(both))
    for x, y in zip(joined.batch(idx), copied.batch(idx)):
        assert all(u is v is None or torch.equal(u, v) for u, v in zip(x, y)) if isinstance(x, tuple) else torch.equal(x, y)
    b.metadata = dict(b.metadata, num_codes=9)
    with pytest.raises(UserError, match="pairs second and first differ in num_codes"):
        concat_pairs([a, b], ["first", "second"])


def test_split_keeps_games_apart_and_cuts_a_single_game_in_time() -> None:
    games = np.repeat(np.arange(10), 7)
    split = split_pairs(games, 0.2, seed=3)
    assert not set(games[split.train]) & set(games[split.val]) and len(set(games[split.val])) == 2
    assert sorted(np.concatenate([split.train, split.val])) == list(range(70))
    one = split_pairs(np.zeros(10, np.int64), 0.2)
    assert one.train.tolist() == list(range(8)) and one.val.tolist() == [8, 9]


# ----------------------------------------------------------------------------- checkpoints

def save_mapper(path: Path, **overrides) -> ActionToLatentConfig:
    cfg = ActionToLatentConfig(**{"variant": "action", "num_latents": 1, "num_codes": 8, "context_frames": 2,
                                  "state_frames": 2, "action_meanings": NAMES, **overrides})
    save_checkpoint(path, stage="action_to_latent", model=ActionToLatent(cfg), config=cfg, step=1)
    return cfg


def tiny_world_model(**overrides) -> LatentActionModel:
    torch.manual_seed(0)
    return LatentActionModel(model_config("tiny", PALETTE, height=H, width=W, **overrides)).eval()


def test_loader_rebuilds_the_map_from_the_file_alone(tmp_path: Path) -> None:
    cfg = save_mapper(tmp_path / "m.pt")
    mapper = load_action_mapper(tmp_path / "m.pt", latent_config=tiny_world_model().config)
    assert mapper.config == cfg and not mapper.training


def test_a_map_for_another_latent_shape_is_refused(tmp_path: Path) -> None:
    save_mapper(tmp_path / "m.pt", num_codes=16)
    with pytest.raises(CheckpointError, match=r"codebook of 16, but the world model has 1 with a codebook of 8"):
        load_action_mapper(tmp_path / "m.pt", latent_config=tiny_world_model().config)
    save_mapper(tmp_path / "grid.pt", num_latents=4)
    with pytest.raises(CheckpointError, match="4 latent position"):
        load_action_mapper(tmp_path / "grid.pt", latent_config=tiny_world_model().config)


def test_a_map_saved_with_a_removed_experiments_fields_loads_only_with_them_off(tmp_path: Path) -> None:
    cfg = save_mapper(tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["config"].update(recent_frames=0, ball_clock=0)      # a map trained before those flags were removed
    torch.save(payload, tmp_path / "old.pt")
    assert load_action_mapper(tmp_path / "old.pt").config == cfg
    payload["config"]["ball_clock"] = 12
    torch.save(payload, tmp_path / "clock.pt")
    with pytest.raises(CheckpointError, match="was trained with ball_clock, an experiment this version no longer has"):
        load_action_mapper(tmp_path / "clock.pt")


def test_missing_and_wrong_stage_files_get_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_action_mapper(tmp_path / "nothing.pt")
    model = tiny_world_model()
    save_checkpoint(tmp_path / "wm.pt", stage="latent_action", model=model, config=model.config, step=0)
    with pytest.raises(CheckpointError, match="belongs to stage 'latent_action', not 'action_to_latent'"):
        load_action_mapper(tmp_path / "wm.pt")


# ----------------------------------------------------------------------------- end to end

def test_end_to_end_compares_decoded_frames() -> None:
    """On a tiny untrained world model: a map that reproduces the encoder's codes gives the same frame
    every step; codes from another map can only give the same frame where the decoder ignores them."""
    world = tiny_world_model()
    pairs = synthetic_pairs(num_games=2, steps=12)
    pairs.metadata["num_codes"] = world.config.num_codes
    context = torch.from_numpy(pairs.frames[pairs.context_index])    # (N, C, H, W)
    # Stand-in encoder codes that depend on the action only, and a map that knows them exactly.
    pairs.codes = (pairs.actions[:, None] * 2) % world.config.num_codes
    mapper = ActionToLatent(mapper_config("action", pairs)).eval()
    with torch.no_grad():
        mapper.table.weight.zero_()
        mapper.table.bias.zero_()
        for a in range(4):
            mapper.table.weight[(2 * a) % world.config.num_codes, a] = 10.0
    idx = np.arange(len(pairs))
    result = end_to_end(mapper, world, pairs, idx, batch_size=5)
    assert result["e2e_same_code"] == 1.0 and result["e2e_same_frame"] == 1.0 and result["e2e_steps"] == 24
    pairs.codes = (pairs.codes + 1) % world.config.num_codes  # now every mapped code is wrong
    result = end_to_end(mapper, world, pairs, idx, batch_size=5)
    assert result["e2e_same_code"] == 0.0
    mapped = mapper.sample_codes(torch.from_numpy(pairs.actions))
    same = (world.predict_next(context, mapped) == world.predict_next(context, torch.from_numpy(pairs.codes)))
    assert result["e2e_same_frame"] == pytest.approx(same.flatten(1).all(1).float().mean().item())
    wrong = ActionToLatent(ActionToLatentConfig(variant="action", num_latents=1, num_codes=3, context_frames=2, state_frames=2))
    with pytest.raises(CheckpointError, match="codebook of 3"):
        end_to_end(wrong, world, pairs, idx)
    pairs.metadata["num_codes"] = world.config.num_codes + 1   # pairs collected with another world model
    with pytest.raises(UserError, match="come from another world model"):
        end_to_end(mapper, world, pairs, idx)


# ----------------------------------------------------------------------------- the script

def test_train_script_end_to_end(tmp_path: Path, script) -> None:
    pairs = synthetic_pairs(num_games=5, steps=60)
    world = tiny_world_model()
    pairs.metadata["num_codes"] = world.config.num_codes
    save_checkpoint(tmp_path / "wm.pt", stage="latent_action", model=world, config=world.config, step=0)
    pairs.metadata["latent_checkpoint"] = str(tmp_path / "wm.pt")
    write_pairs(tmp_path / "pairs.json", pairs)
    out = tmp_path / "ckpt" / "action_to_latent_best.pt"
    proc = script("train_action_to_latent.py", "--pairs_path", str(tmp_path / "pairs.json"), "--output_path", str(out),
                  "--num_steps", "60", "--eval_every", "30", "--state_pool", "2", "2", "--state_channels", "8", "16",
                  "--hidden", "32", "--learning_rate", "0.003", "--max_pairs", "100", "--sweep", "--sweep_sizes",
                  "50", "0", "--num_e2e", "20", "--threads", "1")
    mapper = load_action_mapper(out, latent_config=world.config)
    assert mapper.config.variant == "action_state" and mapper.config.state_pool == [2, 2] and mapper.config.marginal
    payload = torch.load(out, weights_only=True)
    assert payload["metrics"]["e2e_steps"] == 20 and 0 <= payload["metrics"]["accuracy"] <= 1
    assert payload["metrics"]["labelled_pairs"] == 100 and payload["metrics"]["unlabelled_pairs"] == 240 - 100
    for name in ("metrics.csv", "curves.png", "confusion.png", "sweep.csv", "sweep.png"):
        assert (out.parent / f"action_to_latent_{name}").is_file(), name
    sweep = (out.parent / "action_to_latent_sweep.csv").read_text().splitlines()
    assert sweep[0].startswith("variant,labelled_pairs,unlabelled_pairs,accuracy")
    assert [row.split(",")[:3] for row in sweep[1:]] == [["action", "50", "0"], ["action", "240", "0"],
                                                          ["action_state", "50", "0"], ["action_state", "240", "0"],
                                                          ["action_state+unlabelled", "50", "190"]]
    assert "accuracy=" in proc.stdout
    bench = script("-m", "bench.bench_end_to_end", str(tmp_path / "wm.pt"), "--pairs_path", str(tmp_path / "pairs.json"),
                   "--map", str(out), "--steps", "20", "--threads", "1")
    m = payload["metrics"]   # the bench checks the training's pairs and gets the training's figures
    assert (f"wm.pt: same frame from the mapped and the encoder's code {m['e2e_same_frame']:.1%}, same code "
            f"{m['e2e_same_code']:.1%}; real next frame drawn exactly from the encoder's code "
            f"{m['e2e_exact_encoder']:.1%}, from the mapped {m['e2e_exact_mapped']:.1%}") in bench.stdout
    bad = script("-m", "bench.bench_end_to_end", "--pairs_path", str(tmp_path / "pairs.json"), "--val_fraction", "1",
                 check=False)
    assert bad.returncode == 1 and "--val_fraction must lie in (0, 1)" in bad.stderr and "Traceback" not in bad.stderr
    missing = script("-m", "bench.bench_end_to_end", str(tmp_path / "wm.pt"), str(tmp_path / "nope.pt"), "--pairs_path",
                     str(tmp_path / "pairs.json"), "--map", str(out), check=False)
    assert missing.returncode == 1 and "nope.pt does not exist" in missing.stderr and "wm.pt:" not in missing.stdout


def test_train_script_refuses_bad_input(tmp_path: Path, script) -> None:
    proc = script("train_action_to_latent.py", "--pairs_path", str(tmp_path / "none.json"), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    pairs = synthetic_pairs(num_games=2, steps=10)
    pairs.metadata["latent_checkpoint"] = str(tmp_path / "gone.pt")
    write_pairs(tmp_path / "pairs.json", pairs)
    proc = script("train_action_to_latent.py", "--pairs_path", str(tmp_path / "pairs.json"), "--game", "Pong",
                  check=False)
    assert proc.returncode == 1 and "not Pong" in proc.stderr and proc.stderr.strip().count("\n") == 0
    proc = script("train_action_to_latent.py", "--pairs_path", str(tmp_path / "pairs.json"), "--output_path",
                  str(tmp_path / "m.pt"), "--num_steps", "5", "--state_pool", "2", "2", "--threads", "1")
    assert "end-to-end check skipped: world model" in proc.stdout and "gone.pt" in proc.stdout


def test_train_flags_are_checked(capsys) -> None:
    from train_action_to_latent import TrainConfig
    for flags, message in ((["--max_pairs", "-5"], "--max_pairs must be zero or more"),
                           (["--labelled_fraction", "0"], "--labelled_fraction must lie in (0, 1]"),
                           (["--sweep_variants", "tabular"], "unknown variant"),
                           (["--action_history", "17"], "--action_history must be at most 16"),
                           (["--state_frames", "33"], "--state_frames must be at most 32")):
        with pytest.raises(SystemExit) as exc:
            parse_config(TrainConfig, "", flags)
        assert exc.value.code == 2 and message in capsys.readouterr().err
