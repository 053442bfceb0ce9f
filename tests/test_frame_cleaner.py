"""models/frame_cleaner.py: it starts as the world model's decoder, learns to repair a damaged frame,
round-trips through its checkpoint, refuses a file of another stage or other frames, and the neural
environment applies it after every step; train_frame_cleaner.py end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models import frame_cleaner as fc
from models.atari import make_rgb_env
from models.breakout_damage import Palette, erase_paddle_end
from models.checkpoint import CheckpointError, save_checkpoint
from models.episodes import Episode, save_episode
from models.frame_dataset import PaletteIndexer
from models.latent_action import load_latent_action_model, model_config
from models.neural_env import NeuralBreakoutEnv, load_models, real_start


@pytest.fixture(scope="module")
def tiny_episodes(tmp_path_factory) -> Path:
    """Five short real games of random play, saved as episodes."""
    folder = tmp_path_factory.mktemp("episodes")
    env = make_rgb_env()
    rng = np.random.default_rng(0)
    for g in range(5):
        frames, actions = [env.reset(seed=g)[0]], rng.integers(0, 4, size=30).astype(np.uint8)
        frames += [env.step(int(a))[0] for a in actions]
        save_episode(folder / f"game_{g:05d}.npz", Episode(
            frames=np.stack(frames), actions=actions, rewards=np.zeros(30, np.float32), lives=np.full(31, 5, np.uint8),
            terminated=np.zeros(30, bool), metadata={"player": "random"}))
    env.close()
    return folder


@pytest.fixture(scope="module")
def world(tiny_dir: Path):
    return load_latent_action_model(tiny_dir / "latent_action.pt")


@pytest.fixture(scope="module")
def real_frames(world) -> np.ndarray:
    """Six real frames as the tiny world model's palette indices (3 + 1 for context, 1 next)."""
    env = make_rgb_env()
    frames = real_start(env, 6, seed=0)
    env.close()
    return PaletteIndexer(world.config.palette).to_indices(frames)


def test_it_starts_by_giving_back_the_frame_with_the_decoders_features(world, real_frames) -> None:
    cleaner = fc.cleaner_from_world_model(world)
    history = torch.from_numpy(real_frames[None, 1:1 + cleaner.history_length])
    drawn = torch.from_numpy(real_frames[None, 1 + cleaner.history_length])
    assert torch.equal(cleaner.clean(history, drawn), drawn.long())
    assert torch.equal(cleaner.net.stem[0].weight, world.decoder.stem[0].weight)


def test_it_learns_to_repair_a_paddle(world, real_frames) -> None:
    torch.manual_seed(0)
    cleaner = fc.cleaner_from_world_model(world).train()
    palette = Palette.of(world.config.palette)
    real = real_frames[-1]
    broken = erase_paddle_end(real, palette, 4, right=True)
    history = torch.from_numpy(real_frames[None, -1 - cleaner.history_length:-1])
    batch = fc.CleanerBatch(history=history, drawn=torch.from_numpy(broken[None]), real=torch.from_numpy(real[None]),
                            damaged=torch.tensor([True]))
    optimizer = torch.optim.Adam(cleaner.parameters(), lr=3e-3)
    first, _ = fc.train_step(cleaner, optimizer, batch)
    for _ in range(300):
        last, _ = fc.train_step(cleaner, optimizer, batch)
    assert last < 0.2 * first
    assert torch.equal(cleaner.eval().clean(batch.history, batch.drawn)[0], batch.real[0].long())


def test_batches_mix_damaged_and_drawn_frames(world, real_frames) -> None:
    context = np.repeat(real_frames[None, :world.config.context_frames], 8, axis=0)
    real = np.repeat(real_frames[None, world.config.context_frames], 8, axis=0)
    batch = fc.cleaner_batch(world, context, real, Palette.of(world.config.palette), 0.5, np.random.default_rng(0))
    assert batch.history.shape == (8, world.config.context_frames - 1, 210, 160)
    assert 0 < batch.damaged.sum() < 8
    assert torch.equal(batch.real, torch.from_numpy(real))
    metrics = fc.evaluate(fc.cleaner_from_world_model(world), world, context, real, Palette.of(world.config.palette))
    assert set(metrics) == {"drawn_exact", "cleaned_exact", "damaged_repaired", "real_untouched", "paddle_4px_repaired"}
    assert all(0 <= v <= 1 for v in metrics.values())


def test_checkpoint_round_trip_and_refusals(world, tmp_path: Path) -> None:
    cleaner = fc.cleaner_from_world_model(world)
    path = tmp_path / "frame_cleaner.pt"
    save_checkpoint(path, stage=fc.STAGE, model=cleaner, config=world.config, step=3)
    loaded = fc.load_frame_cleaner(path, world.config)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), cleaner.state_dict().values()))
    with pytest.raises(CheckpointError, match="belongs to stage 'latent_action'"):
        fc.load_frame_cleaner(_world_file(world, tmp_path), world.config)
    other = model_config("tiny", world.config.palette, context_frames=3)
    with pytest.raises(CheckpointError, match="other frames than the world model's"):
        fc.load_frame_cleaner(path, other)


def _world_file(world, tmp_path: Path) -> Path:
    path = tmp_path / "latent_action.pt"
    save_checkpoint(path, stage="latent_action", model=world, config=world.config, step=0)
    return path


def test_the_environment_cleans_every_frame(tiny_dir: Path, tmp_path: Path) -> None:
    models = load_models(tiny_dir, torch.device("cpu"))
    cleaner = fc.cleaner_from_world_model(models[0]).eval()
    cleaner.clean = lambda history, drawn: torch.zeros_like(drawn)   # every pixel the palette's first colour
    env = NeuralBreakoutEnv(models=models, cleaner=cleaner)
    env.reset(seed=0)
    frame = env.step(0)[0]
    assert (frame == np.asarray(models[0].config.palette[0], dtype=np.uint8)).all()
    plain = NeuralBreakoutEnv(models=models, cleaner=cleaner, clean_frames=False)
    assert plain.cleaner is None
    folder = tmp_path / "with_cleaner"
    folder.mkdir()
    for name in ("latent_action.pt", "action_to_latent.pt"):
        (folder / name).write_bytes((tiny_dir / name).read_bytes())
    save_checkpoint(folder / "frame_cleaner.pt", stage=fc.STAGE, model=fc.cleaner_from_world_model(models[0]),
                    config=models[0].config, step=0)
    assert NeuralBreakoutEnv(folder).cleaner is not None
    assert NeuralBreakoutEnv(folder, clean_frames=False).cleaner is None
    assert NeuralBreakoutEnv(tiny_dir).cleaner is None


def test_training_script_end_to_end(script, tiny_dir: Path, tiny_episodes: Path, tmp_path: Path) -> None:
    out = tmp_path / "cleaner"
    args = ["train_frame_cleaner.py", "--preset", "tiny", "--data_dir", str(tiny_episodes), "--world_model",
            str(tiny_dir / "latent_action.pt"), "--output_dir", str(out), "--device", "cpu"]
    script(*args)
    assert {"best.pt", "latest.pt", "metrics.csv", "metrics.png"} <= {p.name for p in out.iterdir()}
    resumed = script(*args, "--resume", "--num_steps", "6")
    assert "validation:" in resumed.stdout
    bad = script(*args, "--damage_share", "1.5", check=False)
    assert bad.returncode == 2 and "--damage_share" in bad.stderr
