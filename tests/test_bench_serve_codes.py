"""The serve-codes benchmark counts, per code, the pairs from ball-less frames that serve and that wait."""
from __future__ import annotations

import numpy as np

from bench.bench_serve_codes import serve_and_wait_counts
from models.action_pairs import PairSet
from models.atari import make_rgb_env
from models.frame_dataset import PaletteIndexer, palette_from_frames


def pair_set(codes: list[list[int]], num_codes: int = 4) -> PairSet:
    """Pairs over two frames, 0 without a ball and 1 with one; the context frames are (0, 0) except
    for the last pair's (0, 1); the next frame serves for pairs 0, 2 and 4."""
    env = make_rgb_env("Breakout")
    first, _ = env.reset(seed=0)
    served = env.step(1)[0]
    env.close()
    rgb = np.stack([first, served])
    indexer = PaletteIndexer(palette_from_frames([rgb]))
    return PairSet(actions=np.array([1, 0, 1, 0, 1]), codes=np.array(codes), frames=indexer.to_indices(rgb),
                   palette=indexer.palette, context_index=np.array([[0, 0], [0, 0], [0, 0], [0, 0], [0, 1]]),
                   next_index=np.array([1, 0, 1, 0, 1]), game_index=np.zeros(5, dtype=np.int64),
                   metadata={"num_codes": num_codes})


def test_serves_and_waits_are_counted_per_latent_action():
    latents, serves, waits = serve_and_wait_counts(pair_set([[0], [0], [2], [1], [2]]))
    assert latents.tolist() == [[0], [1], [2]]
    assert serves.tolist() == [1, 0, 1]   # the last pair's context shows a ball: neither
    assert waits.tolist() == [1, 1, 0]


def test_a_latent_action_is_all_its_codes():
    latents, serves, waits = serve_and_wait_counts(pair_set([[0, 1], [0, 2], [0, 1], [3, 2], [0, 2]]))
    assert latents.tolist() == [[0, 1], [0, 2], [3, 2]]
    assert serves.tolist() == [2, 0, 0] and waits.tolist() == [0, 1, 1]   # code 0 serves only beside code 1
