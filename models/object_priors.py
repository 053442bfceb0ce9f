"""Breakout's paddle, bricks and ball decoded as whole objects from the decoder's colour probabilities.

The decoder chooses each pixel's colour on its own. Where its code leaves the paddle's exact move
open (about one step in eight where the paddle moves), each likely place wins only the pixels the
places share, so the paddle comes out short or in pieces; where it is unsure of the ball (at a turn,
at a brick), the ball's pixels lose to the background and the ball is gone, or a stale copy stays
beside the new one. The next step copies each error and nothing repairs it: in closed-loop play the
paddle was gone within seconds in most games.

Here each object is drawn whole, where the decoder's probabilities put it; the priors only say what
the objects look like and that they do not vanish, as the recordings show them.

- ``PaddlePrior``: of every paddle the game can show, a solid bar of one of ``PADDLE_WIDTHS`` at any
  column (the right wall may hide all but ``MIN_SHOWN`` px of it), the likeliest is drawn, at the
  width of the context frames' paddle, so a paddle drawn short once is mended at the next step.
  Beyond the bar its rows keep one ball's width of its colour while a ball falls past, else none.
- ``BrickPrior``: a brick cell is drawn lit whole (in its likeliest colour) or empty; a cell at
  least half lit is a brick, and in a cell less lit only a ball's pixels stay (a ball inside a
  broken brick's cell takes the row's colour). A half-erased brick would otherwise stay as it is and
  read as a ball that never moves, to the player and to the FIRE rule of ``models.neural_env``.
- ``BallPrior``: while the last frame shows the ball above the paddle, the next frame shows exactly
  one whole ball: where the decoder draws none, several or a piece of one, the likeliest ball-sized
  place within ``BALL_REACH`` px of the last one, clear of the standing bricks, is drawn (among the
  bricks' rows in each row's colour and above them in the walls' grey, as the game draws it) and
  every other ball pixel is cleared.
  A ball falling low above the paddle (from ``LOST_ROW``) may have been missed, so there it is kept
  only where the decoder gives that place at least ``CAUGHT_LOG_ODDS``; so is one that was low two
  frames before and out of view in the last (in the paddle's rows as it bounces: the recordings show
  a ball come back after one frame out of view 79 times, after two 36 times). A ball rising off the
  paddle is not falling past it, and is kept. The real ball never stands still (but at 0.1% of
  recorded steps, at the paddle): a ball is never redrawn where it was, and one the decoder draws
  there is moved to the likeliest other place, or, from ``LOST_ROW``, taken away.
  In flight above the paddle's reach the real ball turns only on a brick or a wall, never slows
  down, and speeds up past ``KEPT_SPEED`` only as it breaks a brick of the top three rows; the
  decoder, which sees 4 frames, lets it slow after each turn (the neural ball moved 4 rows a step
  where the emulator's moved 8), speeds it up anywhere, and sometimes turns it on nothing. So where
  the decoder draws the ball slower than its speed (read over the ``SPEED_MEMORY`` frames a game
  keeps, up to ``KEPT_SPEED``), faster without such a brick, or turned, and the path on is clear of
  bricks, the ball goes on at its speed: at the likeliest column there, else straight on from where
  the decoder drew it. A ball the decoder loses in flight goes on the same way, at the likeliest
  column (before, the likeliest place anywhere near often sent it back: a second bounce off the
  paddle, a turn in mid-field). A rising ball that the decoder turns back under a standing brick
  breaks it, where no brick went: it had turned in a broken brick's gap as if the brick above were
  hit, and left that brick standing. And a ball bounces off the brick it breaks, as the real one
  does (the decoder let it fly on into the gap and break the bricks above in the same rise), at its
  full speed, or at ``FASTEST_BALL`` off a brick of the top three rows. Away from the paddle and the
  side walls it keeps its sideways step, as the real ball does, also where it turns on a brick."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from models.breakout_objects import (BALL_PADDLE_RGB, BALL_ROWS, BALL_SIZE, BALL_WIDTH, BRICK_ROW_RGB, BRICK_ROWS, BRICK_SIZE,
                                     FIELD_X, FRAME_SHAPE, LOST_ROW, PADDLE_ROWS, PADDLE_WIDTHS, WALL_RGB)

MIN_SHOWN = 8       # px of the paddle left in view at the right wall (measured: 8-16 px shown there)
BALL_REACH = 16     # px the ball may be drawn from its last place (the fastest recorded ball moves 14)
BRICK_DRAWN_SHARE = 0.5   # a brick cell drawn at least this lit is drawn whole, else empty but for a ball
# A ball low above the paddle is kept where the decoder's likeliest ball-sized place scores at least
# this mean log odds. Measured on real frames (60 recorded games, the map's codes): 99.9% of the
# balls that bounce off the paddle score as much, and 18% of those lost past it (at -2.5: 98.4% and
# 7.8%, but in closed-loop play the neural game then lost 3.6 times the emulator's balls, not 2.0).
CAUGHT_LOG_ODDS = -5.0
KEPT_SPEED = 8     # rows a step: a ball is held to its speed up to this, faster is left to the decoder
FASTEST_BALL = 14  # rows a step of the fastest recorded ball: a lost or bounced ball goes on at up to this
# The real ball speeds up past KEPT_SPEED only as it breaks a brick of the top three rows (every such
# speed-up of 8 emulator games x 1,000 steps); the decoder did so 8 times as often, anywhere.
SPEED_UP_ROWS = 3
SPEED_UP_STEPS = 3   # context frames back to look for that brick: the speed shows over the next two steps
SPEED_MEMORY = 8   # frames a game keeps for the ball prior to read the ball's speed from


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


def log_odds(logits: torch.Tensor, colour: int | torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) palette logits -> (B, H, W) log odds of ``colour`` against every other colour;
    ``colour`` is one palette index, or one for each row (H,)."""
    log_p = F.log_softmax(logits.float(), dim=1)
    if isinstance(colour, torch.Tensor):
        b, _, h, w = log_p.shape
        log_p = log_p.gather(1, colour.to(log_p.device).view(1, 1, h, 1).expand(b, 1, h, w))[:, 0]
    else:
        log_p = log_p[:, colour]
    return log_p - torch.log1p(-log_p.exp().clamp(max=1 - 1e-6))


def span(flags: torch.Tensor) -> torch.Tensor:
    """(..., n) bool -> (...) how many places from the first set flag to the last (0: none set)."""
    index = torch.arange(flags.shape[-1], device=flags.device)
    first = torch.where(flags, index, flags.shape[-1]).min(-1).values
    last = torch.where(flags, index, -1).max(-1).values
    return (last - first + 1).clamp(min=0)


def to_cells(band: torch.Tensor) -> torch.Tensor:
    """The bricks' rows of the field (B, 36, 144) -> their cells (B, 6, 18, h, w)."""
    (h, w), b = BRICK_SIZE, band.shape[0]
    return band.reshape(b, band.shape[1] // h, h, band.shape[2] // w, w).permute(0, 1, 3, 2, 4)


def from_cells(cells: torch.Tensor) -> torch.Tensor:
    """``to_cells`` undone: (B, 6, 18, h, w) -> (B, 36, 144)."""
    b, n_rows, n_cols, h, w = cells.shape
    return cells.permute(0, 1, 3, 2, 4).reshape(b, n_rows * h, n_cols * w)


def without_colour(logits: torch.Tensor, colour: int) -> torch.Tensor:
    """(B, K, ...) -> (B, ...) the likeliest palette index other than ``colour``."""
    return logits.index_fill(1, torch.tensor([colour], device=logits.device), -torch.inf).argmax(1)


class PaddlePrior:
    """Redraws the paddle rows of a decoded frame (see the module's docstring)."""

    def __init__(self, colour: int):
        self.colour = colour
        masks, widths = paddle_masks(PADDLE_WIDTHS, FIELD_X[1] - FIELD_X[0], MIN_SHOWN)
        self.masks = torch.from_numpy(masks)                      # (P, W) bool
        self.mask_widths = torch.from_numpy(widths)               # (P,)
        self.widths = torch.tensor(PADDLE_WIDTHS)

    def apply(self, indices: torch.Tensor, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Frame (B, H, W) palette indices with the paddle rows redrawn, given the palette logits
        (B, K, H, W) it was read from and the context indices (B, C, H, W)."""
        rows, cols = slice(*PADDLE_ROWS), slice(*FIELD_X)
        band_logits = logits[:, :, rows, cols]                                # (B, K, R, W)
        best = self.masks.to(indices.device)[self.scores(band_logits, context[:, :, rows, cols]).argmax(1)]  # (B, W)
        drawn = indices[:, rows, cols]
        coloured = drawn == self.colour
        falling = (context[:, -1, int(LOST_ROW):PADDLE_ROWS[0], cols] == self.colour).flatten(1).any(1)   # (B,)
        kept = self._ball_kept(coloured, best) & falling[:, None, None]
        band = torch.where(coloured & ~kept, without_colour(band_logits, self.colour), drawn)
        band = torch.where(best[:, None], torch.full_like(band, self.colour), band)
        out = indices.clone()
        out[:, rows, cols] = band
        return out

    def scores(self, band_logits: torch.Tensor, context_band: torch.Tensor) -> torch.Tensor:
        """(B, P) log-likelihood ratio of each paddle against none, summed over its pixels; paddles
        of another width than the context's are ruled out."""
        evidence = log_odds(band_logits, self.colour).sum(1)                   # (B, W)
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
        """(B, R, W) the coloured pixels that may stay beside the paddle: the ball-wide window of
        columns, not touching the paddle, that holds most of them."""
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


class BrickPrior:
    """Draws each brick cell whole or empty (see the module's docstring)."""

    def __init__(self, black: int, num_colours: int):
        self.black, self.num_colours = black, num_colours

    def apply(self, indices: torch.Tensor, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Frame (B, H, W) palette indices with every brick cell lit whole or empty but for a ball,
        given the palette logits (B, K, H, W) and the context (B, C, H, W). At most one brick goes
        in a step (no recorded step breaks two): of the bricks standing in the last context frame and
        drawn gone, the one whose cell the decoder is surest is black goes, the others stand."""
        region = (slice(None), slice(*BRICK_ROWS), slice(*FIELD_X))
        cells = to_cells(indices[region])                                                 # (B, 6, 18, h, w)
        lit = cells != self.black
        counts = F.one_hot(cells.long(), self.num_colours).sum((3, 4))                    # (B, 6, 18, K)
        counts[..., self.black] = -1
        colour = counts.argmax(-1)[..., None, None].to(cells.dtype)                       # (B, 6, 18, 1, 1)
        brick = lit.float().mean((3, 4), keepdim=True) >= BRICK_DRAWN_SHARE
        ball = self._fits_a_ball(lit)[..., None, None]
        cells = torch.where(brick, colour.expand_as(cells),
                            torch.where(ball, cells, torch.full_like(cells, self.black)))
        before = to_cells(context[:, -1][region]).to(cells.dtype)
        gone = (before != self.black).all(4).all(3) & ~brick[..., 0, 0]                   # (B, 6, 18)
        several = gone.flatten(1).sum(1) > 1
        if several.any():
            black = to_cells(F.softmax(logits[:, :, region[1], region[2]].float(), 1)[:, self.black]).mean((3, 4))
            surest = black.masked_fill(~gone, -1.0).flatten(1).argmax(1)                   # (B,)
            stands = gone & several[:, None, None]
            stands.view(len(stands), -1)[torch.arange(len(stands)), surest] = False
            cells = torch.where(stands[..., None, None], before, cells)
        out = indices.clone()
        out[region] = from_cells(cells)
        return out

    @staticmethod
    def _fits_a_ball(lit: torch.Tensor) -> torch.Tensor:
        """(B, 6, 18) bool: the cell's lit pixels (B, 6, 18, h, w) fit in a ball's box."""
        return (span(lit.any(-1)) <= BALL_SIZE[0]) & (span(lit.any(-2)) <= BALL_SIZE[1])


class BallPrior:
    """Keeps one whole ball in play above the paddle (see the module's docstring)."""

    def __init__(self, colour: int, black: int, row_colours: list[int], wall: int):
        self.colour, self.black = colour, black
        self.band = slice(BRICK_ROWS[0] - BALL_ROWS[0], BRICK_ROWS[1] - BALL_ROWS[0])   # the bricks' rows in the field
        rows = torch.full((BALL_ROWS[1] - BALL_ROWS[0],), colour, dtype=torch.long)
        rows[self.band] = torch.tensor(row_colours).repeat_interleave(BRICK_SIZE[0])
        rows[:self.band.start] = wall                                # above the bricks Breakout draws it grey
        self.row_colour = rows                                      # (R,) the ball's colour in each row of the field

    def apply(self, indices: torch.Tensor, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Frame (B, H, W) palette indices with the ball redrawn where needed, given the palette
        logits (B, K, H, W) and the context indices (B, C, H, W)."""
        rows, cols = slice(*BALL_ROWS), slice(*FIELD_X)
        drawn, drawn_standing = self.ball_mask(indices[:, rows, cols])             # (B, R, W) each
        frames = context.shape[:2]
        balls, standing = (m.unflatten(0, frames) for m in self.ball_mask(context[:, :, rows, cols].flatten(0, 1)))
        top_rows = slice(self.band.start, self.band.start + SPEED_UP_ROWS * BRICK_SIZE[0])
        sped_up = (standing[:, max(-SPEED_UP_STEPS, -frames[1]), top_rows]
                   & ~drawn_standing[:, top_rows]).flatten(1).any(1)              # a top brick went lately
        centres = self.centre(balls.flatten(0, 1)).unflatten(0, frames)            # (B, C, 2) rows, columns
        before, bricks = balls[:, -1], standing[:, -1]                              # (B, R, W) each
        had = before.flatten(1).any(1)
        still = had & (drawn == before).flatten(1).all(1)
        last = centres[:, -1]
        if context.shape[1] > 1:                                                   # a low ball out of view for a frame
            earlier = centres[:, -2]
            hidden = ~had & (earlier[:, 0] >= LOST_ROW)
            rising = had & (earlier[:, 0] > last[:, 0])                            # it bounced: not falling past
            last = torch.where(hidden[:, None], earlier, last)
        else:
            hidden = rising = torch.zeros_like(had)
        low = (last[:, 0] >= LOST_ROW) & ~rising
        gone = still & low                                                         # it fell past the paddle
        redraw = ~gone & ((had & still) | ((had | hidden) & ~self.one_ball(drawn)))
        hit = self.bricks_hit(centres, standing)
        way = self.heading(centres[..., 0], hit.flatten(1).any(1))
        place = self.kept_flight(centres[..., 0], drawn, last, way, sped_up, hit[:, top_rows].flatten(1).any(1))
        flying = had & ~gone & ~redraw & ~place[:, 0].isnan()
        out = indices.clone()
        lost = self.lost_flight(centres[..., 0], last, way)
        for b in (gone | redraw).nonzero().flatten().tolist():
            if redraw[b] and not lost[b, 0].isnan():
                moved = self.fly_on(out[b], logits[b], last[b], lost[b], bricks[b])
                if not torch.equal(moved, out[b]):
                    out[b] = moved
                    continue
            out[b] = self.redraw(out[b], logits[b], last[b] if redraw[b] else None,
                                 least=CAUGHT_LOG_ODDS if low[b] else -torch.inf)
        for b in flying.nonzero().flatten().tolist():
            out[b] = self.fly_on(out[b], logits[b], last[b], place[b], bricks[b])
        out = self.keep_sideways(out, logits, centres, bricks)
        return self.break_on_bounce(out, last, way, bricks)

    def keep_sideways(self, frames: torch.Tensor, logits: torch.Tensor, centres: torch.Tensor,
                      bricks: torch.Tensor) -> torch.Tensor:
        """Frames (B, H, W) with a ball in flight that is drawn off its sideways step moved back onto
        it, in the row it is drawn in, where the path there is clear of bricks, given the palette
        logits (B, K, H, W), the ball's centres (B, C, 2) in the context frames and the standing bricks'
        pixels (B, R, W) of the last one. Above the paddle's rows and away from the side walls the
        real ball moves as many columns each step as the step before (99.9% of 4,698 steps of 8
        emulator games; 95% at a turn on a brick or the top wall); the decoder's changed its sideways
        step in 12% of such steps and at 55% of its turns."""
        if centres.shape[1] < 2:
            return frames
        before, last = centres[:, -2], centres[:, -1]
        step = last[:, 1] - before[:, 1]
        column = last[:, 1] + step
        margin = step.abs() + BALL_SIZE[1]
        inside = torch.ones_like(step, dtype=torch.bool)
        for col in (before[:, 1], column):
            inside &= (col - margin >= FIELD_X[0]) & (col + margin <= FIELD_X[1])
        flying = inside & (before[:, 0] < LOST_ROW) & (last[:, 0] < LOST_ROW)
        for b in flying.nonzero().flatten().tolist():
            ball, _ = self.ball_mask(frames[b, slice(*BALL_ROWS), slice(*FIELD_X)][None])
            now = self.centre(ball)[0]
            if not now[0] < LOST_ROW or (now[1] - column[b]).abs() < 1:
                continue
            place = torch.stack([now[0], column[b]])
            frames[b] = self.redraw(frames[b], logits[b], last[b], at=place, blocked=bricks[b])
        return frames

    @staticmethod
    def bricks_hit(centres: torch.Tensor, standing: torch.Tensor) -> torch.Tensor:
        """(B, R, W) the pixels of the bricks within ``BALL_REACH`` of the ball that went in the last
        step of the context, given the ball's centres (B, C, 2) and the standing bricks' pixels
        (B, C, R, W) in the context frames."""
        if centres.shape[1] < 2:
            return torch.zeros_like(standing[:, -1])
        went = standing[:, -2] & ~standing[:, -1]                                   # (B, R, W)
        place = torch.arange(went.shape[1], device=went.device) + BALL_ROWS[0]
        near_rows = (place[None] - centres[:, -1, :1]).abs() <= BALL_REACH         # (B, R)
        place = torch.arange(went.shape[2], device=went.device) + FIELD_X[0]
        near_cols = (place[None] - centres[:, -1, 1:]).abs() <= BALL_REACH         # (B, W)
        return went & near_rows[:, :, None] & near_cols[:, None]

    @staticmethod
    def heading(centres: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        """(B,) the ball's way on, up -1 or down 1 (NaN: not known), given its centre rows (B, C) in
        the context frames and whether it broke a brick in the last step (B,): the way of that step,
        turned back where it broke one and had not turned yet. The real ball bounces off every brick
        it breaks (264 of 266 rising balls, 8 emulator games); the decoder let the ball fly on into
        the gap (80 of 452 breaks) and break the bricks above it in the same rise."""
        if centres.shape[1] < 2:
            return torch.full_like(centres[:, 0], float("nan"))
        way = (centres[:, -1] - centres[:, -2]).sign()
        if centres.shape[1] < 3:
            return way
        on_its_way = (centres[:, -2] - centres[:, -3]).sign() == way
        return torch.where(hit & on_its_way, -way, way)

    def break_on_bounce(self, frames: torch.Tensor, last: torch.Tensor, way: torch.Tensor,
                        bricks: torch.Tensor) -> torch.Tensor:
        """Frames (B, H, W) where a rising ball turned back down under a standing brick and no brick
        went: that brick goes (the lowest one over the ball's columns, within ``BALL_REACH`` of its
        top), as every such turn in the recordings breaks one. Given the ball's last centre (B, 2), its
        ``heading`` (B,) and the standing bricks' pixels (B, R, W) of the last context frame. The
        decoder turned the ball in a broken brick's gap as if the brick above stood, and left the
        brick standing. A ball turned by the brick it broke a step before (heading down) breaks none."""
        top = last[:, 0] - BALL_SIZE[0] / 2
        near = (way < 0) & (top - BALL_REACH < BRICK_ROWS[1])
        for b in near.nonzero().flatten().tolist():
            field = frames[b, slice(*BALL_ROWS), slice(*FIELD_X)]
            ball, standing = self.ball_mask(field[None])
            now = self.centre(ball)[0]
            if not now[0] > last[b, 0] or (bricks[b] & ~standing[0]).any():
                continue
            cells = to_cells(standing[:, self.band])[0].all(-1).all(-1)                 # (6, 18) standing
            left = float(min(now[1], last[b, 1])) - FIELD_X[0] - BALL_SIZE[1] / 2
            right = float(max(now[1], last[b, 1])) - FIELD_X[0] + BALL_SIZE[1] / 2
            columns = torch.zeros(cells.shape[1], dtype=torch.bool, device=cells.device)
            columns[max(int(left // BRICK_SIZE[1]), 0):int(right // BRICK_SIZE[1]) + 1] = True
            bottoms = BRICK_ROWS[0] + BRICK_SIZE[0] * torch.arange(1, cells.shape[0] + 1, device=cells.device)
            rows = (bottoms <= float(top[b]) + 1) & (bottoms >= float(top[b]) - BALL_REACH)
            hit = cells & rows[:, None] & columns[None]
            if not hit.any():
                continue
            r = int(hit.any(1).nonzero().max())
            c = int(hit[r].nonzero()[0])
            row0, col0 = BRICK_ROWS[0] + r * BRICK_SIZE[0], FIELD_X[0] + c * BRICK_SIZE[1]
            frames[b, row0:row0 + BRICK_SIZE[0], col0:col0 + BRICK_SIZE[1]] = self.black
        return frames

    def fly_on(self, frame: torch.Tensor, logits: torch.Tensor, last: torch.Tensor, place: torch.Tensor,
               bricks: torch.Tensor) -> torch.Tensor:
        """Frame (H, W) with the ball moved on from ``last`` to ``place``'s row (``place``: its centre's
        row and column), at the likeliest column there that scores ``CAUGHT_LOG_ODDS``, else at
        ``place``; the frame as it is where the path meets a brick standing in it or in ``bricks``
        (R, W), those of the frame before."""
        row = torch.stack([place[0], torch.tensor(float("nan"), device=place.device)])
        likeliest = self.redraw(frame, logits, last, least=CAUGHT_LOG_ODDS, at=row, blocked=bricks)
        if not torch.equal(likeliest, frame):
            return likeliest
        return self.redraw(frame, logits, last, at=place, blocked=bricks)

    def kept_flight(self, centres: torch.Tensor, drawn: torch.Tensor, last: torch.Tensor, way: torch.Tensor,
                    sped_up: torch.Tensor, top_hit: torch.Tensor) -> torch.Tensor:
        """(B, 2) row and column of the ball's centre where the decoder slowed or turned it in flight
        (``fly_on`` checks that nothing is there to turn it on), or sped it up past ``KEPT_SPEED``
        where no brick of the top three rows went (``sped_up``, (B,) bool: one did), given the ball's
        centre rows in the context frames (B, C; NaN: none), its pixels drawn (B, R, W), its last
        centre (B, 2) and its ``heading`` (B,): the row its speed takes it to on its way (turned back by
        a brick it broke: at its full speed, at ``FASTEST_BALL`` where ``top_hit``, (B,) bool, says that
        brick was of the top three rows), the column it was drawn at; NaN where it flies on as drawn."""
        if centres.shape[1] < 2:
            return torch.full_like(last, float("nan"))
        speed, fast = self.flight_speed(centres), self.flight_speed(centres, FASTEST_BALL)
        mine = self.centre(drawn)
        now = mine[:, 0] - last[:, 0]
        bounced = way != (centres[:, -1] - centres[:, -2]).sign()
        faster = (now.sign() == way) & (now.abs() > fast.clamp(min=KEPT_SPEED) + 1) & ~sped_up
        need = torch.where(top_hit, torch.full_like(fast, FASTEST_BALL), torch.where(faster | bounced, fast, speed))
        target = torch.stack([last[:, 0] + way * need, mine[:, 1]], 1)
        above_paddle = (target[:, 0] + BALL_SIZE[0] / 2 < LOST_ROW) & (last[:, 0] < LOST_ROW)
        off = (now.sign() != way) | (now.abs() < need - 1) | faster
        kept = (way != 0) & ~way.isnan() & ~now.isnan() & (speed > 0) & off & above_paddle
        return torch.where(kept[:, None], target, torch.full_like(target, float("nan")))

    def lost_flight(self, centres: torch.Tensor, last: torch.Tensor, way: torch.Tensor) -> torch.Tensor:
        """(B, 2) the row (column NaN: any) a ball the decoder lost, or drew in pieces or standing
        still, is redrawn at, given its centre rows in the context frames (B, C; NaN: none), its last
        centre (B, 2) and its ``heading`` (B,): on its way at its speed (``flight_speed``), rising
        (``fly_on`` checks that no brick stands in its path) or falling short of the paddle; NaN where
        its way is not known.
        Left to the likeliest place anywhere near, such a ball was often put back the way it came: a
        second bounce off the paddle, or a turn in mid-field."""
        if centres.shape[1] < 2:
            return torch.full_like(last, float("nan"))
        row = last[:, 0] + way * self.flight_speed(centres, FASTEST_BALL)
        kept = ((way < 0) | (row + BALL_SIZE[0] / 2 < LOST_ROW)) & (row != last[:, 0])
        nan = torch.full_like(row, float("nan"))
        return torch.stack([torch.where(kept, row, nan), nan], 1)

    @staticmethod
    def flight_speed(centres: torch.Tensor, most: float = KEPT_SPEED) -> torch.Tensor:
        """(B,) rows a step of the ball whose centre rows (B, C) the context frames show (NaN: none):
        the second-largest step since the ball was last out of view for two frames in a row (a step
        cut short by a turn is smaller; one jump alone may be a redraw), at most ``most``."""
        steps = centres.diff(dim=1).abs()                                          # (B, C-1)
        out_of_view = centres.isnan()
        gap = out_of_view[:, 1:] & out_of_view[:, :-1]                             # (B, C-1) two in a row
        after_gap = gap.flip(1).cumsum(1).flip(1) == 0                             # no such gap later on
        steps = steps.nan_to_num(0).masked_fill(~after_gap, 0)
        second = steps.topk(min(2, steps.shape[1]), dim=1).values[:, -1]
        return second.clamp(max=most)

    def ball_mask(self, field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ball's pixels (B, R, W) in the field's palette indices (B, R, W): its colour outside the
        bricks' rows; among them (where it takes each row's colour) the lit pixels of cells not lit
        whole. Also the pixels of whole cells, the standing bricks (B, R, W)."""
        cells = to_cells(field[:, self.band] != self.black)                       # (B, 6, 18, h, w)
        whole = cells.all(4, keepdim=True).all(3, keepdim=True).expand_as(cells)
        mask = field == self.row_colour.to(field.device)[None, :, None]
        standing = torch.zeros_like(field, dtype=torch.bool)
        mask[:, self.band] = from_cells(cells & ~whole)
        standing[:, self.band] = from_cells(whole)
        return mask, standing

    @staticmethod
    def clear_path(standing: torch.Tensor, last: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """(R', W') bool: no standing brick (R, W) lies in the box spanned by the ball at ``last`` (its
        centre's row and column) and a ball whose top-left corner is at each place."""
        height, width = BALL_SIZE
        sums = F.pad(standing.long().cumsum(0).cumsum(1), (1, 0, 1, 0))          # (R+1, W+1)
        tops = torch.arange(shape[0], device=standing.device)[:, None].expand(shape)
        lefts = torch.arange(shape[1], device=standing.device)[None].expand(shape)
        top0 = int(round(float(last[0]) - BALL_ROWS[0] - (height - 1) / 2))
        left0 = int(round(float(last[1]) - FIELD_X[0] - (width - 1) / 2))
        r0, r1 = tops.clamp(max=top0).clamp(min=0), (tops.clamp(min=top0) + height).clamp(max=standing.shape[0])
        c0, c1 = lefts.clamp(max=left0).clamp(min=0), (lefts.clamp(min=left0) + width).clamp(max=standing.shape[1])
        return (sums[r1, c1] - sums[r0, c1] - sums[r1, c0] + sums[r0, c0]) == 0

    @staticmethod
    def one_ball(mask: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the ball's pixels (B, R, W) fill one box no bigger than a ball (smaller where a
        brick or the paddle's rows hide part of it)."""
        rows, cols = span(mask.any(2)), span(mask.any(1))
        return (mask.flatten(1).sum(1) == rows * cols) & (rows > 0) & (rows <= BALL_SIZE[0]) & (cols <= BALL_SIZE[1])

    @staticmethod
    def centre(mask: torch.Tensor) -> torch.Tensor:
        """(B, 2) frame row and column of the centre of the ball's pixels (B, R, W); NaN where none."""
        count = mask.flatten(1).sum(1).float()
        rows = torch.arange(mask.shape[1], device=mask.device) + BALL_ROWS[0]
        cols = torch.arange(mask.shape[2], device=mask.device) + FIELD_X[0]
        return torch.stack([(mask.sum(2) * rows).sum(1) / count, (mask.sum(1) * cols).sum(1) / count], 1)

    def redraw(self, frame: torch.Tensor, logits: torch.Tensor, last: torch.Tensor | None,
               least: float = -torch.inf, at: torch.Tensor | None = None,
               blocked: torch.Tensor | None = None) -> torch.Tensor:
        """Frame (H, W) with no ball pixel above the paddle but one ball at the likeliest place near
        ``last`` (row, column; None: no ball), other than ``last`` itself and clear of the bricks.
        Where no place scores ``least`` (mean log odds of the ball's colour over its pixels), the
        frame as it is. With ``at`` (a centre's row and column, NaN: any) only there, and only where
        the box from ``last`` to the place holds no brick, of the frame or of ``blocked`` (R, W)."""
        rows, cols = slice(*BALL_ROWS), slice(*FIELD_X)
        field = logits[None, :, rows, cols]                                         # (1, K, R, W)
        region = frame[rows, cols]
        mask, standing = self.ball_mask(region[None])
        cleared = without_colour(field, self.colour)[0]                             # (R, W)
        cleared[:self.band.stop] = self.black                       # a broken brick's cell, and above the bricks
        region = torch.where(mask[0], cleared, region)
        if last is not None:
            height, width = BALL_SIZE
            colour = self.row_colour.to(region.device)
            odds = log_odds(field, colour)                                          # (1, R, W) of the ball's colour
            score = F.avg_pool2d(odds[:, None], BALL_SIZE, stride=1)[0, 0]         # (R', W')
            on_brick = F.max_pool2d(standing.float()[None], BALL_SIZE, stride=1)[0, 0] > 0
            centre_rows = torch.arange(score.shape[0], device=score.device) + BALL_ROWS[0] + (height - 1) / 2
            centre_cols = torch.arange(score.shape[1], device=score.device) + FIELD_X[0] + (width - 1) / 2
            rows_off, cols_off = (centre_rows - last[0]).abs(), (centre_cols - last[1]).abs()
            moved = (rows_off >= 1)[:, None] | (cols_off >= 1)[None]
            allowed = (rows_off <= BALL_REACH)[:, None] & (cols_off <= BALL_REACH)[None] & ~on_brick & moved
            if at is not None:                                                      # only there, on a clear path
                walls = standing[0] if blocked is None else standing[0] | blocked
                allowed &= ((centre_rows - at[0]).abs() < 1)[:, None] & self.clear_path(walls, last, score.shape)
                if not at[1].isnan():
                    allowed &= ((centre_cols - at[1]).abs() < 1)[None]
            score = score.masked_fill(~allowed, -torch.inf)
            if not score.max() >= max(least, torch.finfo(score.dtype).min):
                return frame
            top, left = divmod(int(score.argmax()), score.shape[1])
            region[top:top + height, left:left + width] = colour[top:top + height, None].to(region.dtype)
        out = frame.clone()
        out[rows, cols] = region
        return out


class ObjectPriors:
    """The paddle, brick and ball priors, in turn, on a decoded frame."""

    def __init__(self, num_colours: int, colour: int, black: int, row_colours: list[int], wall: int,
                 context_frames: int):
        self.context_frames = context_frames
        self.paddle = PaddlePrior(colour)
        self.bricks = BrickPrior(black, num_colours)
        self.ball = BallPrior(colour, black, row_colours, wall)

    @classmethod
    def for_frames(cls, palette: list[list[int]], shape: tuple[int, int] = FRAME_SHAPE,
                   context_frames: int = 4) -> ObjectPriors | None:
        """The priors for a model of frames of this palette and (rows, columns); None when the frames
        are not Breakout's size or the palette lacks black, the walls' grey or a colour of the bricks
        (the paddle's is the top row's)."""
        where = {tuple(rgb): i for i, rgb in enumerate(palette)}
        needed = [(0, 0, 0), WALL_RGB, *BRICK_ROW_RGB]
        if tuple(shape) != FRAME_SHAPE or any(rgb not in where for rgb in needed):
            return None
        return cls(len(palette), where[BALL_PADDLE_RGB], where[(0, 0, 0)], [where[rgb] for rgb in BRICK_ROW_RGB],
                   where[WALL_RGB], context_frames)

    def apply(self, indices: torch.Tensor, logits: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Frame (B, H, W) palette indices decoded from logits (B, K, H, W) after context (B, C, H, W),
        with its paddle, bricks and ball drawn whole. The paddle and the bricks read the frames the
        decoder saw (the last ``context_frames``); the ball reads all, for its speed."""
        seen = context[:, -self.context_frames:]
        drawn = self.bricks.apply(self.paddle.apply(indices, logits, seen), logits, seen)
        return self.ball.apply(drawn, logits, context)
