"""Breakout's paddle rows decoded as one whole paddle.

The decoder chooses each pixel's colour on its own. Where its code leaves the paddle's exact move
open (about one step in eight where the paddle moves), each likely place wins only the pixels the
places share, so the paddle comes out short or in pieces. The next step copies the damage and
nothing repairs it: in closed-loop play the paddle was gone within seconds in most games.

Here the paddle's rows are decoded together. Of every paddle the game can show, a solid bar of one
of ``PADDLE_WIDTHS`` at any column (the right wall may hide all but ``MIN_SHOWN`` px of it), the one
the decoder's probabilities make likeliest is drawn. The bar keeps the width of the context frames'
paddle, so a paddle drawn short for one frame is mended at the next. Beyond the bar, the rows keep at
most one ball's width of its colour: a ball falling past the paddle. The decoder still decides
where the paddle is; the prior only says what a paddle looks like, as the recordings show it."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.breakout_objects import BALL_PADDLE_RGB, BALL_WIDTH, FIELD_X, PADDLE_ROWS, PADDLE_WIDTHS

MIN_SHOWN = 8   # px of the paddle left in view at the right wall (measured: 8-16 px shown there)


def paddle_masks(widths: tuple[int, ...], field_width: int, min_shown: int) -> tuple[np.ndarray, np.ndarray]:
    """Every paddle the game can show in one row of the field: bool (P, field_width) columns and
    each one's width (P,) before the wall cuts it. Its left edge goes as far right as
    ``field_width - min_shown`` whatever its width."""
    masks, full = [], []
    for width in widths:
        for left in range(field_width - min_shown + 1):
            mask = np.zeros(field_width, dtype=bool)
            mask[left:left + width] = True
            masks.append(mask)
            full.append(width)
    return np.stack(masks), np.array(full)


class PaddlePrior:
    """Redraws the paddle rows of the decoder's most likely frame (see the module's docstring)."""

    def __init__(self, colour: int):
        self.colour = colour
        masks, widths = paddle_masks(PADDLE_WIDTHS, FIELD_X[1] - FIELD_X[0], MIN_SHOWN)
        self.masks = torch.from_numpy(masks)                      # (P, W) bool
        self.mask_widths = torch.from_numpy(widths)               # (P,)
        self.widths = torch.tensor(PADDLE_WIDTHS)

    @classmethod
    def for_palette(cls, palette: list[list[int]]) -> PaddlePrior | None:
        """The prior for a model with this palette; None when the palette lacks the paddle's colour."""
        found = [i for i, rgb in enumerate(palette) if tuple(rgb) == BALL_PADDLE_RGB]
        return cls(found[0]) if found else None

    def apply(self, indices: torch.Tensor, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Frame (B, H, W) palette indices with the paddle rows redrawn, given the palette logits
        (B, K, H, W) it was read from and the context indices (B, C, H, W)."""
        rows, cols = slice(*PADDLE_ROWS), slice(*FIELD_X)
        band_logits = logits[:, :, rows, cols]                                # (B, K, R, W)
        masks = self.masks.to(indices.device)
        best = masks[self.scores(band_logits, context[:, :, rows, cols]).argmax(1)]   # (B, W)
        drawn = indices[:, rows, cols]
        others = band_logits.index_fill(1, torch.tensor([self.colour], device=indices.device), -torch.inf).argmax(1)
        stray = (drawn == self.colour) & ~self._ball_kept(drawn == self.colour, best)
        band = torch.where(stray, others, drawn)
        band = torch.where(best[:, None], torch.full_like(band, self.colour), band)
        out = indices.clone()
        out[:, rows, cols] = band
        return out

    def scores(self, band_logits: torch.Tensor, context_band: torch.Tensor) -> torch.Tensor:
        """(B, P) log-likelihood ratio of each paddle against none, summed over its pixels; paddles
        of another width than the context's are ruled out."""
        log_p = F.log_softmax(band_logits.float(), dim=1)[:, self.colour]       # (B, R, W)
        evidence = (log_p - torch.log1p(-log_p.exp().clamp(max=1 - 1e-6))).sum(1)   # (B, W)
        scores = evidence @ self.masks.to(evidence).T                          # (B, P)
        allowed = self.context_widths(context_band)                            # (B, len(widths))
        fits = (self.mask_widths.to(scores.device)[:, None] == self.widths.to(scores.device)).float()  # (P, n)
        return scores.masked_fill((allowed.float() @ fits.T) == 0, -torch.inf)

    def context_widths(self, context_band: torch.Tensor) -> torch.Tensor:
        """(B, len(widths)) bool: the widths the most context frames show their paddle at (every
        width where none shows one whole, as at the right wall)."""
        shown = (context_band == self.colour).all(2).sum(-1)                     # (B, C) full columns
        counts = (shown[..., None] == self.widths.to(shown.device)).sum(1)      # (B, n)
        most = counts.max(1, keepdim=True).values
        return (counts == most) | (most == 0)

    @staticmethod
    def _ball_kept(coloured: torch.Tensor, paddle: torch.Tensor) -> torch.Tensor:
        """(B, R, W) the coloured pixels kept beside the paddle: the ball-wide window of columns,
        not touching the paddle, that holds most of them."""
        near = paddle.clone()
        near[:, 1:] |= paddle[:, :-1]
        near[:, :-1] |= paddle[:, 1:]
        apart = coloured & ~near[:, None]                                      # (B, R, W)
        per_column = apart.sum(1, keepdim=True).float()                        # (B, 1, W)
        window = F.avg_pool1d(per_column, BALL_WIDTH, stride=1)[:, 0]          # (B, W - BALL_WIDTH + 1)
        left = window.argmax(1)
        offsets = torch.arange(coloured.shape[-1], device=coloured.device) - left[:, None]
        kept = (offsets >= 0) & (offsets < BALL_WIDTH) & (window.amax(1) > 0)[:, None]
        return apart & kept[:, None]
