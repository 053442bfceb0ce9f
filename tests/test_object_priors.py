"""Tests for models/object_priors.py: a drawn frame's paddle and ball, decoded as whole objects."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import breakout_objects as objects
from models.atari import make_rgb_env
from models.breakout_damage import Palette, draw_ball, erase_paddle_end, paddle_columns, remove_ball
from models.breakout_objects import BALL_SIZE, BRICK_ROW_RGB, BRICK_ROWS, FIELD_X, LOST_ROW, PADDLE_ROWS, WALL_RGB
from models.frame_dataset import PaletteIndexer, palette_from_frames
from models.object_priors import MIN_SHOWN, BallPrior, ObjectPriors, PaddlePrior, paddle_masks


@pytest.fixture(scope="module")
def game() -> tuple[np.ndarray, PaletteIndexer]:
    """Palette indices of 4 real frames a few steps after the serve, paddle in mid-field, and their indexer."""
    env = make_rgb_env("Breakout")
    env.reset(seed=3)
    frames = [env.step(action)[0] for action in [1, 3, 3] + [0] * 4]
    env.close()
    indexer = PaletteIndexer(palette_from_frames([np.stack(frames)]))
    return indexer.to_indices(np.stack(frames[-4:])), indexer


def logits_of(probs: np.ndarray) -> torch.Tensor:
    """(1, K, H, W) logits of per-pixel colour probabilities (H, W, K)."""
    return torch.from_numpy(np.log(probs * 0.999 + 0.001 / probs.shape[-1])).permute(2, 0, 1)[None].float()


def confident_logits(frame: np.ndarray, num_colours: int) -> torch.Tensor:
    """Logits of a decoder sure of every pixel of ``frame`` (indices)."""
    return logits_of(np.eye(num_colours)[frame])


def decode(prior: PaddlePrior | BallPrior, logits: torch.Tensor, context: np.ndarray) -> np.ndarray:
    indices = logits.argmax(1)
    return prior.apply(indices, logits, torch.from_numpy(context.astype(np.int64))[None])[0].numpy()


def test_a_paddle_whose_move_the_decoder_is_unsure_of_is_drawn_whole(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).paddle
    last = context[-1]
    paddle = paddle_columns(last, palette)
    probs = np.eye(len(indexer.palette))[last]
    rows = slice(*PADDLE_ROWS)
    for cols in (paddle[-4:], paddle[-1] + 1 + np.arange(4)):   # stayed, or moved 4 px right: each end alone
        probs[rows, cols] = 0.0
        probs[rows, cols, palette.red], probs[rows, cols, palette.black] = 0.45, 0.55
    logits = logits_of(probs)
    plain = logits.argmax(1)[0].numpy()
    assert objects.paddle_width(indexer.to_rgb(plain)) == 12              # each pixel alone: a short paddle
    drawn = decode(prior, logits, context)
    assert objects.paddle_well_formed(indexer.to_rgb(drawn))
    assert paddle_columns(drawn, palette)[0] in (paddle[0], paddle[0] + 4)
    outside = np.ones(drawn.shape, dtype=bool)
    outside[rows] = False
    assert (drawn[outside] == plain[outside]).all()                     # the rest of the frame as drawn


def test_a_paddle_cut_short_in_the_last_frame_comes_back_at_the_contexts_width(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).paddle
    damaged = context.copy()
    damaged[-1] = erase_paddle_end(context[-1], palette, 4, right=True)
    drawn = decode(prior, confident_logits(damaged[-1], len(indexer.palette)), damaged)   # the damage copied
    assert objects.paddle_width(indexer.to_rgb(drawn)) == 16
    short = np.stack([erase_paddle_end(f, palette, 4, right=True) for f in context])   # every frame 12 px: kept
    drawn = decode(prior, confident_logits(short[-1], len(indexer.palette)), short)
    assert objects.paddle_width(indexer.to_rgb(drawn)) == 12


def test_a_falling_ball_beside_the_paddle_stays_and_stray_pieces_go(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).paddle
    paddle = paddle_columns(context[-1], palette)
    frame = draw_ball(context[-1], palette, PADDLE_ROWS[0], FIELD_X[0] + 2)       # a ball falling past
    frame[PADDLE_ROWS[0]:PADDLE_ROWS[1], paddle[-1] + 1:paddle[-1] + 4] = palette.red   # a smear at its end
    frame[PADDLE_ROWS[0] + 1, paddle[-1] + 20:paddle[-1] + 25] = palette.red            # a fragment
    falling = context.copy()
    falling[-1] = draw_ball(context[-1], palette, int(LOST_ROW) + 3, FIELD_X[0] + 2)
    for before, ball in ((falling, True), (context, False)):
        drawn = decode(prior, confident_logits(frame, len(indexer.palette)), before)
        red = drawn[PADDLE_ROWS[0]:PADDLE_ROWS[1], FIELD_X[0]:FIELD_X[1]] == palette.red
        assert red[:, 2:4].all() == ball and red[:, 2:4].any() == ball    # the ball, only while one falls
        assert np.array_equal(paddle_columns(drawn, palette)[2 if ball else 0:], paddle)   # no smear
        assert red.sum() == 4 * 2 * ball + 4 * 16                          # no fragment


def test_the_right_wall_may_hide_part_of_the_paddle_the_left_never() -> None:
    masks, widths = paddle_masks((16, 12), 144, MIN_SHOWN)
    shown = masks.sum(1)
    assert set(shown[widths == 16]) == set(shown[widths == 12]) | {13, 14, 15, 16} == set(range(MIN_SHOWN, 17))
    assert masks[shown < widths][:, -1].all()                            # cut ones touch the right edge
    assert not (masks[:, 0] & (shown < widths)).any()


def test_frames_without_breakouts_colours_or_of_another_size_have_no_priors() -> None:
    breakout = [[0, 0, 0], [142, 142, 142], *map(list, BRICK_ROW_RGB)]
    assert ObjectPriors.for_frames(breakout) is not None
    assert ObjectPriors.for_frames(breakout, (16, 8)) is None
    assert ObjectPriors.for_frames([[0, 0, 0], [200, 72, 72]]) is None           # no bricks' colours
    assert ObjectPriors.for_frames([[0, 0, 0], [236, 236, 236]]) is None


def ball_case(game, at: tuple[int, int], drawn_at: list[tuple[tuple[int, int], float]]):
    """Context with the ball at ``at`` in its last frame alone; logits of a decoder that gives the
    ball colour probability p at each of ``drawn_at`` ((row, column), p) on an empty field."""
    context, indexer = game
    palette = Palette.of(indexer.palette)
    empty = remove_ball(context[-1], palette)
    context = np.stack([empty] * (len(context) - 1) + [draw_ball(empty, palette, *at)])   # no flight to keep on
    probs = np.eye(len(indexer.palette))[empty]
    for (row, col), p in drawn_at:
        cells = probs[row:row + BALL_SIZE[0], col:col + BALL_SIZE[1]]
        cells[:] = 0.0
        cells[..., palette.red], cells[..., palette.black] = p, 1 - p
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).ball
    return decode(prior, logits_of(probs), context), palette


def test_a_ball_the_decoder_is_unsure_of_is_drawn_where_it_is_likeliest(game) -> None:
    drawn, palette = ball_case(game, (140, 70), [((144, 74), 0.4), ((150, 40), 0.45)])
    assert (drawn[144:148, 74:76] == palette.red).all()                   # near the last ball, not the likelier far one
    assert (drawn[150:154, 40:42] != palette.red).all()
    assert objects.ball_count(Palette.of(game[1].palette).colours[drawn]) == 1


def test_of_two_balls_drawn_the_likelier_stays(game) -> None:
    drawn, palette = ball_case(game, (140, 70), [((144, 74), 0.9), ((136, 66), 0.8)])
    assert (drawn[144:148, 74:76] == palette.red).all() and (drawn[136:140, 66:68] != palette.red).all()


def test_one_sure_ball_is_left_to_the_decoder_and_a_low_one_kept_only_where_likely(game) -> None:
    sure, palette = ball_case(game, (140, 70), [((144, 74), 0.9)])
    assert (sure[144:148, 74:76] == palette.red).all()
    low = int(LOST_ROW) + 2
    caught, _ = ball_case(game, (low, 70), [((low - 6, 74), 0.3)])           # bounced off the paddle
    assert (caught[low - 6:low - 2, 74:76] == palette.red).all()
    gone, _ = ball_case(game, (low, 70), [((low - 6, 74), 0.003)])           # log odds -5.8: fell past it
    assert not (gone[int(LOST_ROW) - 8:PADDLE_ROWS[0]] == palette.red).any()


def test_a_brick_is_drawn_whole_or_gone_and_a_ball_inside_a_broken_one_stays(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).bricks
    frame = context[-1].copy()
    cell = lambda row, col: (slice(BRICK_ROWS[0] + 6 * row, BRICK_ROWS[0] + 6 * row + 6),
                             slice(FIELD_X[0] + 8 * col, FIELD_X[0] + 8 * col + 8))
    standing, nicked, wiped, holed = cell(0, 3), cell(1, 5), cell(2, 7), cell(5, 9)
    assert all((frame[c] != palette.black).all() for c in (standing, nicked, wiped))
    colour = frame[nicked][0, 0]
    frame[nicked][:2, :5] = palette.black                                # a brick nicked: 10 of 48 px
    frame[wiped][:4] = palette.black                                     # two-thirds wiped: a remnant
    before = context.copy()
    before[-1][holed] = palette.black                                    # a brick broken before ...
    frame[holed] = palette.black
    frame[holed][1:5, 3:5] = colour                                      # ... with a ball inside its cell
    logits = confident_logits(frame, len(indexer.palette))
    drawn = prior.apply(logits.argmax(1), logits, torch.from_numpy(before.astype(np.int64))[None])[0].numpy()
    assert (drawn[standing] == context[-1][standing]).all()
    assert (drawn[nicked] == colour).all()                               # mended
    assert (drawn[wiped] == palette.black).all()                         # gone
    assert (drawn[holed] == frame[holed]).all()                          # the ball stays


def test_a_ball_drawn_where_it_was_moves_on_or_below_the_paddles_reach_goes(game) -> None:
    moved, palette = ball_case(game, (140, 70), [((140, 70), 0.9), ((144, 74), 0.4)])
    assert (moved[140:144, 70:72] != palette.red).all() and (moved[144:148, 74:76] == palette.red).all()
    low = int(LOST_ROW) + 3
    gone, palette = ball_case(game, (low, 70), [((low, 70), 0.9)])
    assert not (gone[low:low + 4, 70:72] == palette.red).any()


def test_a_ball_among_the_bricks_is_kept_whole_in_its_rows_colours_and_clear_of_bricks(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    colour = {tuple(rgb): i for i, rgb in enumerate(indexer.palette.tolist())}
    green, blue = colour[BRICK_ROW_RGB[4]], colour[BRICK_ROW_RGB[5]]
    frame = remove_ball(context[-1], palette)
    tunnel = (slice(BRICK_ROWS[0] + 24, BRICK_ROWS[1]), slice(FIELD_X[0] + 72, FIELD_X[0] + 80))  # two broken bricks
    frame[tunnel] = palette.black
    before = context.copy()
    before[-1] = frame
    before[-1][87:91, 82:84] = blue                                       # the ball in the blue row's cell
    probs = np.eye(len(indexer.palette))[frame]
    probs[83:87, 84:86] = 0.0
    probs[83:87, 84:86, green], probs[83:87, 84:86, palette.black] = 0.4, 0.6   # unsure where it went
    # (the standing bricks above, sure of their rows' colours, are likelier places for a ball's colours)
    prior = ObjectPriors.for_frames(indexer.palette.tolist())
    drawn = prior.apply(logits_of(probs).argmax(1), logits_of(probs), torch.from_numpy(before.astype(np.int64))[None])[0].numpy()
    ball = np.zeros(drawn.shape, dtype=bool)
    ball[83:87, 84:86] = True
    assert (drawn[ball] == green).all()                                   # drawn whole, in the green row's colour
    assert (drawn[tunnel][~ball[tunnel]] == palette.black).all()
    outside = np.ones(drawn.shape, dtype=bool)
    outside[tunnel] = False
    assert (drawn[outside] == frame[outside]).all()                       # the bricks stand as they were


def test_of_two_bricks_drawn_gone_in_one_step_only_the_surer_goes(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).bricks
    cell = lambda col: (slice(BRICK_ROWS[0] + 24, BRICK_ROWS[0] + 30), slice(FIELD_X[0] + 8 * col, FIELD_X[0] + 8 * col + 8))
    probs = np.eye(len(indexer.palette))[context[-1]]
    for col, p_black in ((4, 0.9), (5, 0.7)):                            # two neighbours drawn gone
        probs[cell(col)] = 0.0
        probs[cell(col)][..., palette.black] = p_black
        probs[cell(col)][..., context[-1][cell(col)][0, 0]] = 1 - p_black
    logits = logits_of(probs)
    drawn = prior.apply(logits.argmax(1), logits, torch.from_numpy(context.astype(np.int64))[None])[0].numpy()
    assert (drawn[cell(4)] == palette.black).all()                       # the surer one goes
    assert (drawn[cell(5)] == context[-1][cell(5)]).all()                # the other stands as it stood


def test_a_piece_of_the_ball_left_where_it_was_is_redrawn_elsewhere(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    empty = remove_ball(context[-1], palette)
    before = np.stack([empty] * 3 + [draw_ball(empty, palette, 140, 70)])          # no flight to keep on
    probs = np.eye(len(indexer.palette))[empty]
    for rows, cols, p in ((slice(140, 144), slice(70, 72), 0.95), (slice(144, 148), slice(74, 76), 0.7)):
        probs[rows, cols] = 0.0
        probs[rows, cols, palette.red], probs[rows, cols, palette.black] = p, 1 - p
    probs[143, 71] = np.eye(len(indexer.palette))[palette.black]          # 7 of its 8 pixels stay put: whole, the
    # ball would be likeliest in its old place, which a ball never keeps
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).ball
    drawn = decode(prior, logits_of(probs), before)
    assert (drawn[140:144, 70:72] != palette.red).all()                   # not whole again in its old place
    assert (drawn[144:148, 74:76] == palette.red).all()


def test_a_low_ball_out_of_view_for_one_frame_comes_back_where_likely(game) -> None:
    context, indexer = game
    palette = Palette.of(indexer.palette)
    empty = remove_ball(context[-1], palette)
    low = int(LOST_ROW) + 4
    before = np.stack([empty, empty, draw_ball(empty, palette, low, 70), empty])   # low, then in the paddle's rows
    prior = ObjectPriors.for_frames(indexer.palette.tolist()).ball
    for p, back in ((0.3, True), (0.003, False)):                         # log odds -0.8 / -5.8
        probs = np.eye(len(indexer.palette))[empty]
        probs[low - 6:low - 2, 72:74] = 0.0
        probs[low - 6:low - 2, 72:74, palette.red], probs[low - 6:low - 2, 72:74, palette.black] = p, 1 - p
        drawn = decode(prior, logits_of(probs), before)
        assert (drawn[low - 6:low - 2, 72:74] == palette.red).all() == back
        assert (drawn[int(LOST_ROW) - 20:PADDLE_ROWS[0]] == palette.red).sum() == 8 * back


def flight_case(game, path: list[tuple[int, int]], drawn_at: list[tuple[tuple[int, int], float]],
                broken: list[tuple[int, int]] = (), breaks: tuple[int, int] | None = None,
                went: tuple[int, int] | None = None) -> tuple[np.ndarray, Palette, dict]:
    """Context whose frames show the ball at each of ``path`` (top-left row, column), one a frame, with
    the brick cells ``broken`` (row, column of the cell) gone, and the cell ``went`` gone from the last
    frame; a decoder that draws the cell ``breaks`` gone too and gives the ball probability p at each
    of ``drawn_at`` ((row, column), p), in the row colours of the last frame."""
    context, indexer = game
    palette = Palette.of(indexer.palette)
    colour = {tuple(rgb): i for i, rgb in enumerate(indexer.palette.tolist())}
    cell = lambda row, col: (slice(BRICK_ROWS[0] + 6 * row, BRICK_ROWS[0] + 6 * row + 6),
                             slice(FIELD_X[0] + 8 * col, FIELD_X[0] + 8 * col + 8))
    empty = remove_ball(context[-1], palette)
    for at in broken:
        empty[cell(*at)] = palette.black
    before = np.stack([draw_ball(empty, palette, *at) for at in path])
    before[:, :BRICK_ROWS[0]][before[:, :BRICK_ROWS[0]] == palette.red] = colour[WALL_RGB]   # grey above the bricks
    if went is not None:
        empty[cell(*went)] = palette.black
        before[-1][cell(*went)] = palette.black
    next_frame = empty.copy()
    if breaks is not None:
        next_frame[cell(*breaks)] = palette.black
    probs = np.eye(len(indexer.palette))[next_frame]
    for (row, col), p in drawn_at:
        in_bricks = BRICK_ROWS[0] <= row < BRICK_ROWS[1]
        ball = colour[BRICK_ROW_RGB[(row - BRICK_ROWS[0]) // 6]] if in_bricks else palette.red
        ball = colour[WALL_RGB] if row < BRICK_ROWS[0] else ball
        cells = probs[row:row + BALL_SIZE[0], col:col + BALL_SIZE[1]]
        cells[:] = 0.0
        cells[..., ball], cells[..., palette.black] = p, 1 - p
    prior = ObjectPriors.for_frames(indexer.palette.tolist())
    return prior.apply(logits_of(probs).argmax(1), logits_of(probs), torch.from_numpy(before.astype(np.int64))[None])[0].numpy(), palette, colour


def test_a_ball_in_flight_keeps_its_speed(game) -> None:
    falling = [(108, 54), (116, 58), (124, 62), (132, 66)]                      # 8 rows a step
    slowed, palette, _ = flight_case(game, falling, [((136, 70), 0.9), ((140, 70), 0.3)])
    assert (slowed[140:144, 70:72] == palette.red).all() and (slowed[136:140, 70:72] != palette.red).all()
    unlikely, _, _ = flight_case(game, falling, [((136, 70), 0.9), ((140, 70), 0.001)])   # log odds -6.9: ...
    assert (unlikely[140:144, 70:72] == palette.red).all() and (unlikely[136:140, 70:72] != palette.red).all()
    turned, _, _ = flight_case(game, falling, [((128, 70), 0.9), ((140, 70), 0.3)])      # turned on nothing:
    assert (turned[140:144, 70:72] == palette.red).all() and (turned[128:132, 70:72] != palette.red).all()   # on
    bounced = [(128, 40), (120, 44), (112, 48), (104, 52), (100, 56), (104, 60), (108, 64), (112, 68)]
    after, _, _ = flight_case(game, bounced, [((116, 72), 0.9)])                   # 8 a step before the turn:
    assert (after[120:124, 72:74] == palette.red).all()                           # kept, from the frames before
    seen_by_the_decoder, _, _ = flight_case(game, bounced[-4:], [((116, 72), 0.9)])
    assert (seen_by_the_decoder[116:120, 72:74] == palette.red).all()


def test_a_ball_turns_or_slows_as_drawn_where_a_brick_is(game) -> None:
    rising = [(121, 64), (113, 68), (105, 72), (97, 76)]                        # 8 rows up a step, under the bottom row
    hole = ((89, 80), 0.3)                                                      # in the broken cell beyond brick 8
    blocked, palette, _ = flight_case(game, rising, [((93, 80), 0.9), hole], broken=[(5, 9)])
    assert (blocked[93:97, 80:82] == palette.red).all()
    through, _, colour = flight_case(game, rising, [((93, 80), 0.9), hole], broken=[(5, 8), (5, 9)])
    assert (through[89:93, 80:82] == colour[BRICK_ROW_RGB[5]]).all() and (through[93:97, 80:82] != palette.red).all()
    straight_up = [(121, 81), (113, 82), (105, 83), (97, 84)]
    hit, _, _ = flight_case(game, straight_up, [((99, 85), 0.9), ((89, 85), 0.3)], breaks=(5, 9))   # it broke
    assert (hit[99:103, 85:87] == palette.red).all()                           # the brick above and turned on it


def test_the_balls_speed_is_read_since_it_was_last_out_of_view_and_a_lone_jump_is_not_it() -> None:
    nan = float("nan")
    centres = torch.tensor([[100.0, 108, 116, 124, 128, 124, 120, 116],     # 8 a step, then a turn cut short
                            [100.0, 114, nan, nan, 120, 124, 128, 132],     # 14 before a serve: not this ball's
                            [100.0, 104, 108, 112, 126, 130, 134, 138],     # one jump of 14 among steps of 4
                            [100.0, 108, nan, 124, 132, 140, 148, 156]])    # one frame out of view: still 8
    assert BallPrior.flight_speed(centres).tolist() == [8.0, 4.0, 4.0, 8.0]


def test_a_ball_rising_off_the_paddle_is_never_taken_for_lost(game) -> None:
    bounced = [(169, 58), (177, 60), (185, 62), (181, 64)]
    drawn, palette, _ = flight_case(game, bounced, [((173, 66), 0.003)])       # log odds -5.8: a falling ball
    assert (drawn[173:177, 66:68] == palette.red).all()                       # that low would be gone


def test_a_lost_ball_goes_on_its_way_at_its_speed_not_back_the_way_it_came(game) -> None:
    rising = [(150, 60), (142, 62), (134, 64), (126, 66)]                      # 8 rows up, 2 columns right a step
    back_down, palette, _ = flight_case(game, rising, [((130, 68), 0.4), ((118, 68), 0.2)])   # unsure of both
    assert (back_down[118:122, 68:70] == palette.red).all()
    assert (back_down[BRICK_ROWS[1]:PADDLE_ROWS[0]] == palette.red).sum() == 8
    nowhere_else, _, _ = flight_case(game, rising, [((130, 68), 0.4)])     # no column likely on its way: any
    assert (nowhere_else[118:122] == palette.red).sum() == 8 and (nowhere_else[130:134] != palette.red).all()
    falling = [(100, 60), (108, 62), (116, 64), (124, 66)]
    up_again, _, _ = flight_case(game, falling, [((120, 68), 0.4), ((132, 68), 0.2)])
    assert (up_again[132:136, 68:70] == palette.red).all()
    off_the_paddle = [(169, 58), (177, 60), (185, 62), (181, 64)]
    no_second_bounce, _, _ = flight_case(game, off_the_paddle, [((185, 66), 0.4), ((173, 68), 0.2)])
    assert (no_second_bounce[173:177, 68:70] == palette.red).all()
    near_the_paddle = [(150, 60), (158, 62), (166, 64), (174, 66)]            # may have been missed: as before
    low, _, _ = flight_case(game, near_the_paddle, [((170, 68), 0.4)])
    assert (low[170:174, 68:70] == palette.red).all()


def test_a_rising_ball_turned_back_under_a_standing_brick_breaks_it(game) -> None:
    straight_up = [(121, 81), (113, 82), (105, 83), (97, 84)]                 # under brick (5, 9)
    turned, palette, _ = flight_case(game, straight_up, [((99, 85), 0.9)])   # turned, and no brick went
    assert (turned[87:93, 80:88] == palette.black).all()
    assert (turned[99:103, 85:87] == palette.red).all()
    broke, _, _ = flight_case(game, straight_up, [((99, 85), 0.9)], breaks=(5, 10))   # one went: no other
    assert (broke[87:93, 80:88] != palette.black).all()
    on_its_way, _, _ = flight_case(game, straight_up, [((89, 85), 0.9)], broken=[(5, 9)])   # up the gap
    assert (on_its_way[81:87, 80:88] != palette.black).all()


def test_a_ball_that_broke_a_brick_bounces_off_it(game) -> None:
    fast_up = [(133, 81), (121, 82), (109, 83), (97, 84)]                      # 12 a step; brick (5, 9) went at the last
    into_the_gap = [((89, 85), 0.9), ((105, 85), 0.3), ((109, 85), 0.3)]
    bounced, palette, colour = flight_case(game, fast_up, into_the_gap, went=(5, 9))
    assert (bounced[109:113, 85:87] == palette.red).all() and (bounced[89:93, 85:87] != colour[BRICK_ROW_RGB[5]]).all()
    assert (bounced[81:87, 80:88] != palette.black).all()                     # and broke no other
    already_down = [(113, 82), (105, 83), (97, 84), (101, 85)]
    on_down, _, _ = flight_case(game, already_down, [((109, 86), 0.9), ((93, 86), 0.3)], went=(5, 9))
    assert (on_down[109:113, 86:88] == palette.red).all()
    rising = [(150, 60), (142, 62), (134, 64), (126, 66)]
    far, _, _ = flight_case(game, rising, [((118, 68), 0.9), ((134, 68), 0.3)], went=(0, 1))   # not its brick
    assert (far[118:122, 68:70] == palette.red).all()


def test_a_ball_that_broke_a_brick_of_the_top_three_rows_bounces_off_it_at_full_speed(game) -> None:
    up_the_gap = [(99, 81), (91, 82), (83, 83), (75, 84)]                      # 8 a step; brick (2, 9) went at the last
    drawn_at = [((67, 85), 0.9), ((83, 85), 0.3), ((89, 85), 0.3)]
    sped, _, colour = flight_case(game, up_the_gap, drawn_at, broken=[(5, 9), (4, 9), (3, 9)], went=(2, 9))
    assert (sped[89:93, 85:87] == colour[BRICK_ROW_RGB[5]]).all()             # 14 rows down, not 8
    assert (sped[83:87, 85:87] != colour[BRICK_ROW_RGB[4]]).all()



def test_a_ball_in_flight_keeps_its_sideways_step_but_off_a_side_wall(game) -> None:
    falling = [(108, 54), (116, 58), (124, 62), (132, 66)]                     # 4 columns right a step
    kept, palette, _ = flight_case(game, falling, [((140, 74), 0.9)])          # drawn 8 columns on
    assert (kept[140:144, 70:72] == palette.red).all() and (kept[140:144, 74:76] != palette.red).all()
    at_the_wall = [(108, 134), (116, 138), (124, 142), (132, 146)]
    bounced, _, _ = flight_case(game, at_the_wall, [((140, 142), 0.9)])       # off the right wall: as drawn
    assert (bounced[140:144, 142:144] == palette.red).all()


def test_above_the_bricks_the_ball_is_grey_as_breakout_draws_it(game) -> None:
    falling = [(34, 60), (38, 62), (42, 64), (46, 66)]                        # off the top wall, 4 rows a step
    drawn, palette, colour = flight_case(game, falling, [((50, 68), 0.4)])    # unsure of it
    above = drawn[BRICK_ROWS[0] - 25:BRICK_ROWS[0], FIELD_X[0]:FIELD_X[1]]
    assert (drawn[50:54, 68:70] == colour[WALL_RGB]).all() and (above == colour[WALL_RGB]).sum() == 8
    assert (above == palette.red).sum() == 0
    two, _, _ = flight_case(game, falling, [((50, 68), 0.9), ((40, 100), 0.8)])   # and a stray one: gone
    above = two[BRICK_ROWS[0] - 25:BRICK_ROWS[0], FIELD_X[0]:FIELD_X[1]]
    assert (two[50:54, 68:70] == colour[WALL_RGB]).all() and (above == colour[WALL_RGB]).sum() == 8

def test_a_ball_sped_up_past_8_rows_a_step_is_held_to_its_speed_unless_a_top_brick_went(game) -> None:
    falling = [(108, 54), (116, 58), (124, 62), (132, 66)]                     # 8 rows a step
    held, palette, _ = flight_case(game, falling, [((146, 70), 0.9), ((140, 70), 0.3)])
    assert (held[140:144, 70:72] == palette.red).all() and (held[144:150, 70:72] != palette.red).all()
    sped, _, _ = flight_case(game, falling, [((146, 70), 0.9), ((140, 70), 0.3)], breaks=(2, 3))
    assert (sped[146:150, 70:72] == palette.red).all()
    slow = [(108, 54), (112, 58), (116, 62), (120, 66)]                        # 4 a step: up to 8 is left as drawn
    faster, _, _ = flight_case(game, slow, [((128, 70), 0.9)])
    assert (faster[128:132, 70:72] == palette.red).all()
