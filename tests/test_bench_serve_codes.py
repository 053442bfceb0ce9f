"""The serve-codes benchmark counts, per code, the pairs from ball-less frames that serve and that wait."""
from __future__ import annotations

import numpy as np

from bench.bench_serve_codes import serve_and_wait_counts
from models.action_to_latent import PairSet
from models.atari import make_rgb_env
from models.frame_dataset import PaletteIndexer, palette_from_frames


def test_serves_and_waits_are_counted_per_code():
    env = make_rgb_env("Breakout")
    first, _ = env.reset(seed=0)
    served = env.step(1)[0]
    env.close()
    rgb = np.stack([first, served])
    indexer = PaletteIndexer(palette_from_frames([rgb]))
    # frame 0 has no ball, frame 1 has one; context frames are (0, 0) except for the last pair's (0, 1)
    pairs = PairSet(actions=np.array([1, 0, 1, 0, 1]), codes=np.array([[0], [0], [2], [1], [2]]),
                    frames=indexer.to_indices(rgb), palette=indexer.palette,
                    context_index=np.array([[0, 0], [0, 0], [0, 0], [0, 0], [0, 1]]),
                    next_index=np.array([1, 0, 1, 0, 1]), game_index=np.zeros(5, dtype=np.int64),
                    metadata={"num_codes": 4})
    serves, waits = serve_and_wait_counts(pairs)
    assert serves.tolist() == [1, 0, 1, 0]   # the last pair's context shows a ball: neither
    assert waits.tolist() == [1, 1, 0, 0]
