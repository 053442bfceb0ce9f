"""Tiny synthetic (action, latent code) pairs with a known mapping, for the tests of stage 4."""
from __future__ import annotations

import numpy as np

from models.action_pairs import PairSet

NAMES = ["NOOP", "FIRE", "RIGHT", "LEFT"]
H, W = 20, 16          # small frames keep the synthetic problems fast
PALETTE = np.array([[0, 0, 0], [200, 72, 72], [142, 142, 142]], np.uint8)


def synthetic_pairs(num_games: int = 6, steps: int = 120, seed: int = 0) -> PairSet:
    """A known mapping that needs the state: the code is 1 + action, except that a RIGHT with the
    'paddle' (a block of colour 1) in the rightmost column, or a LEFT with it in the leftmost one, moves
    nothing and gets the NOOP code. FIRE and NOOP share a code, as when the ball is in play."""
    rng = np.random.default_rng(seed)
    frames, actions, codes, ctx, nxt, games = [], [], [], [], [], []
    offset = 0
    for g in range(num_games):
        col = rng.integers(0, 4, steps + 1)                          # paddle column (of 4) per frame
        f = np.zeros((steps + 1, H, W), np.uint8)
        for t, c in enumerate(col):
            f[t, H - 3:H - 1, c * 4:c * 4 + 4] = 1
        f[:, 2, :] = 2                                               # a static wall
        a = rng.integers(0, 4, steps)
        blocked = ((a == 2) & (col[:-1] == 3)) | ((a == 3) & (col[:-1] == 0))
        code = np.where((a <= 1) | blocked, 1, a + 1)
        t = np.arange(steps)
        frames.append(f)
        actions.append(a)
        codes.append(code[:, None])
        ctx.append(np.stack([np.maximum(t - 1, 0), t], 1) + offset)  # two context frames, the last is t
        nxt.append(t + 1 + offset)
        games.append(np.full(steps, g))
        offset += steps + 1
    meta = {"num_codes": 6, "num_latents": 1, "context_frames": 2, "game": "Breakout", "action_meanings": NAMES}
    return PairSet(actions=np.concatenate(actions), codes=np.concatenate(codes), frames=np.concatenate(frames),
                   palette=PALETTE, context_index=np.concatenate(ctx), next_index=np.concatenate(nxt),
                   game_index=np.concatenate(games), metadata=meta)
