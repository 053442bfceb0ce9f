"""Tests for models/latent_action.py: quantizer, shapes, learning, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_state, save_checkpoint
from models.latent_action import (STAGE, LatentActionModel, VectorQuantizer, check_train_batch, fold_frames, grow_codebook,
                                  load_latent_action_model, model_config, open_loop_step, rollout, train_step,
                                  unfold_frames)
from models.breakout_objects import FIELD_X, PADDLE_ROWS
from models.object_priors import ObjectPriors

PALETTE = [[0, 0, 0], [200, 72, 72], [142, 142, 142], [66, 72, 200], [198, 108, 58], [180, 122, 48], [162, 162, 42],
           [72, 160, 72]]   # Breakout's colours: black, the paddle's, the walls', the bricks'


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def frames(batch: int, count: int, seed: int = 0) -> torch.Tensor:
    """(batch, count, 210, 160) palette indices: black with a few coloured blocks."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(batch, count, 210, 160, dtype=torch.uint8)
    for b in range(batch):
        for _ in range(3):
            r, c = torch.randint(0, 200, (2,), generator=gen).tolist()
            x[b, :, r:r + 6, c % 150:c % 150 + 8] = int(torch.randint(1, len(PALETTE), (1,), generator=gen))
    return x


def tiny_model(seed: int = 0, **overrides) -> LatentActionModel:
    torch.manual_seed(seed)
    return LatentActionModel(model_config("tiny", PALETTE, **overrides))


def test_straight_through_gradient_reaches_the_encoder_output():
    vq = VectorQuantizer(num_codes=8, code_dim=4)
    z = torch.randn(3, 4, 1, 2, requires_grad=True)
    q = vq(z)
    assert q.codes.shape == (3, 2) and q.latent.shape == (3, 4, 1, 2)
    # The forward value is the chosen code ...
    torch.testing.assert_close(q.latent.permute(0, 2, 3, 1).reshape(-1, 4), vq.book()[q.codes.flatten()])
    # ... and the gradient of the decoder side flows into z.
    (q.latent * torch.randn_like(q.latent)).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_entropy_term_has_a_gradient():
    vq = VectorQuantizer(num_codes=8, code_dim=4)
    z = torch.randn(16, 4, 1, 1, requires_grad=True)
    vq(z).entropy_loss.backward()
    assert z.grad.abs().sum() > 0


def test_unused_codes_are_reset_onto_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(num_codes=4, code_dim=3)
    vq.train()
    target = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.0]]), dim=1)
    vq.codebook.data[0] = target[0]
    z = target.repeat(8, 1)[:, :, None, None]           # every output is code 0
    for _ in range(10):                                 # code 0 gets used, codes 1-3 never
        vq(z)
    before = vq.codebook.data.clone()
    assert vq.reset_dead_codes(z.flatten(1), dead_share=0.05) == 3
    torch.testing.assert_close(vq.codebook.data[0], before[0])           # the live code stays
    assert torch.allclose(vq.book()[1:], target.expand(3, 3), atol=0.05)  # the dead ones move onto the data
    assert vq.reset_dead_codes(z.flatten(1), dead_share=0.05) == 0       # and get time to be chosen


def test_grown_codebook_keeps_old_codes_and_resets_only_the_new_ones():
    torch.manual_seed(0)
    small = LatentActionModel(model_config("tiny", PALETTE))              # 8 codes
    small.quantizer.usage.fill_(1 / 8)                                    # all in use
    grown = LatentActionModel(model_config("tiny", PALETTE, num_codes=11))
    load_state(grown, grow_codebook(small.state_dict(), 11))
    torch.testing.assert_close(grown.quantizer.codebook.data[:8], small.quantizer.codebook.data)
    torch.testing.assert_close(grown.quantizer.book().norm(dim=1), torch.ones(11))
    assert grown.quantizer.usage[8:].tolist() == [0.0, 0.0, 0.0]
    assert grown.quantizer.reset_dead_codes(torch.randn(16, 8), dead_share=0.05) == 3
    torch.testing.assert_close(grown.quantizer.codebook.data[:8], small.quantizer.codebook.data)
    with pytest.raises(CheckpointError, match="can grow, not shrink"):
        grow_codebook(small.state_dict(), 4)


@pytest.mark.parametrize("preset", ["default", "original"])
def test_output_shapes_and_dtypes(preset):
    torch.manual_seed(0)
    model = LatentActionModel(model_config(preset, PALETTE)).eval()
    cfg = model.config
    context, nxt = frames(2, cfg.context_frames), frames(2, 1, seed=1)[:, 0]
    with torch.no_grad():
        out = model(context, nxt)
        codes = model.encode_latents(context, nxt)
        pred = model.predict_next(context, codes)
        rgb = model.prediction_rgb(out.prediction)
    assert codes.shape == (2, cfg.num_latents) and codes.dtype == torch.int64
    assert int(codes.max()) < cfg.num_codes
    assert pred.shape == (2, 210, 160) and pred.dtype == torch.int64 and int(pred.max()) < len(PALETTE)
    assert rgb.shape == (2, 210, 160, 3) and rgb.dtype == torch.uint8
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_fold_and_unfold_are_inverse():
    cfg = model_config("default", PALETTE)
    x = frames(2, 1)
    folded = fold_frames(x, cfg)                       # (2, 1, 16, h, w)
    assert folded.shape[2] == cfg.fold ** 2
    torch.testing.assert_close(unfold_frames(folded[:, 0], cfg), x[:, 0].long())


def test_a_decoder_with_no_opinion_copies_the_last_frame():
    model = tiny_model().eval()
    torch.nn.init.zeros_(model.decoder.head.weight)
    torch.nn.init.zeros_(model.decoder.head.bias)
    context = frames(2, model.config.context_frames)
    with torch.no_grad():
        pred = model.predict_next(context, model.random_codes(2))
    torch.testing.assert_close(pred, context[:, -1].long())


@pytest.mark.parametrize("change_share, undo, drawn", [(0.3, False, True), (0.3, True, False), (0.8, True, True)])
def test_decoding_undoes_the_weight_on_changed_pixels(change_share, undo, drawn):
    """Logits fitted by the weighted loss to a pixel that changes in some of the steps from the same
    frames: read as they are, they draw the change once it is more than 1 / (1 + 5) likely; read
    unweighted, only when it is the more likely colour."""
    model = tiny_model(undo_change_weight=undo)
    last = torch.zeros(10, 210, 160, dtype=torch.long)
    target = last.clone()
    changed = round(10 * change_share)
    target[:changed, 100, 80] = 1
    folded_shape = fold_frames(last[:1, None], model.config).shape[2:]
    logits = torch.zeros(1, len(PALETTE), *folded_shape, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        model.reconstruction_loss(logits.expand(10, -1, -1, -1, -1), last, target).backward()
        optimizer.step()
    drawn_frame = model.prediction_indices(model.unweighted(logits.detach(), last[:1]))
    assert bool(drawn_frame[0, 100, 80] == 1) is drawn
    assert int((drawn_frame != 0).sum()) == int(drawn)


def test_sampling_gives_valid_indices_and_rollouts_chain():
    model = tiny_model().eval()
    context = frames(1, model.config.context_frames)
    with torch.no_grad():
        sample = model.predict_next(context, model.random_codes(1), temperature=1.0,
                                    generator=torch.Generator().manual_seed(0))
        frames_out = rollout(model, context, model.random_codes(1)[:, None].repeat(1, 3, 1))
    assert sample.shape == (1, 210, 160) and 0 <= int(sample.min()) and int(sample.max()) < len(PALETTE)
    assert frames_out.shape == (1, 3, 210, 160)


def test_loss_falls_on_a_tiny_batch():
    model = tiny_model()
    context = frames(2, model.config.context_frames)
    nxt = context[:, -1].clone()
    nxt[0, 100:104, 50:52] = 1   # a "ball" appears in one, a block moves in the other
    nxt[1, 20:26, 30:38] = 3
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [train_step(model, optimizer, context, nxt)[0] for _ in range(25)]
    assert losses[-1] < 0.5 * losses[0]


def test_frozen_latent_actions_leave_the_codes_and_train_the_decoder():
    model = tiny_model()
    context = frames(4, model.config.context_frames)
    nxt = context[:, -1].clone()
    nxt[:, 100:104, 50:52] = 1
    model.eval()
    codes = model.encode_latents(context, nxt)
    model.freeze_latent_actions()
    model.train()
    assert model.decoder.training and not model.encoder.training and not model.quantizer.training
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("decoder.")}
    decoder = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(3):
        train_step(model, optimizer, context, nxt)
    for key, value in model.state_dict().items():   # weights, batch-norm statistics and code usage
        if key in frozen:
            torch.testing.assert_close(value, frozen[key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(v, decoder[k]) for k, v in model.decoder.state_dict().items())
    model.eval()
    assert torch.equal(model.encode_latents(context, nxt), codes)


def test_open_loop_training_feeds_back_the_drawn_frames_and_trains_the_decoder_alone():
    model = tiny_model()
    c = model.config.context_frames
    window = frames(4, c + 3)
    window[:, c:, 100:104, 50:52] = 1                      # a "ball" appears and stays
    context, future = window[:, :c], window[:, c:]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    with pytest.raises(ValueError, match="freeze the latent actions"):
        open_loop_step(model, optimizer, context, future)
    model.freeze_latent_actions()
    model.train()
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("decoder.")}
    seen = []   # (context, output) of every decoder call
    decode = model.decode
    model.decode = lambda ctx, codes: seen.append((ctx.clone(), decode(ctx, codes))) or seen[-1][1]
    first, metrics = open_loop_step(model, optimizer, context, future)
    model.decode = decode
    assert len(seen) == 3 and torch.equal(seen[0][0], context)
    drawn = model.prediction_indices(model.unweighted(seen[0][1].detach(), context[:, -1]))
    assert torch.equal(seen[1][0][:, :-1], context[:, 1:])          # the context moves on by one frame,
    assert torch.equal(seen[1][0][:, -1], drawn.to(torch.uint8))      # ending in the frame the decoder drew,
    assert not torch.equal(seen[1][0][:, -1], future[:, 0])           # not the real one
    assert metrics["first_step_loss"] > 0 and metrics["last_step_loss"] > 0
    losses = [open_loop_step(model, optimizer, context, future)[0] for _ in range(40)]
    assert losses[-1] < 0.5 * first
    for key, value in model.state_dict().items():
        if key in frozen:
            torch.testing.assert_close(value, frozen[key], rtol=0, atol=0, msg=key)


def test_checkpoint_round_trip_and_clear_errors(tmp_path):
    model = tiny_model()
    path = tmp_path / "best.pt"
    save_checkpoint(path, stage=STAGE, model=model, config=model.config, step=3)
    loaded = load_latent_action_model(path)
    context = frames(1, model.config.context_frames)
    codes = torch.zeros(1, model.config.num_latents, dtype=torch.long)
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(context, codes), model.eval().decode(context, codes))
    assert loaded.config == model.config


def test_a_loaded_breakout_model_draws_its_objects_with_the_priors(tmp_path):
    model = tiny_model()
    for game, has_prior in (("Breakout", True), (None, True), ("Pong", False)):
        path = tmp_path / f"{game}.pt"
        save_checkpoint(path, stage=STAGE, model=model, config=model.config, step=3, game=game)
        loaded = load_latent_action_model(path)
        assert (loaded.object_priors is not None) == has_prior, game
    context = frames(1, model.config.context_frames)
    codes = torch.zeros(1, model.config.num_latents, dtype=torch.long)
    with torch.no_grad():
        loaded.object_priors = ObjectPriors.for_frames(model.config.palette)
        with_prior = loaded.predict_next(context, codes)
    rows = slice(*PADDLE_ROWS)
    paddle = with_prior[0, rows, FIELD_X[0]:FIELD_X[1]] == 1               # PALETTE's paddle colour
    assert paddle.all(0).sum() >= 8 and torch.equal(paddle.all(0), paddle.any(0))   # one whole bar

    other = tmp_path / "dqn.pt"
    save_checkpoint(other, stage="dqn", model=model, config=model.config, step=3)
    with pytest.raises(CheckpointError, match="belongs to stage 'dqn'"):
        load_latent_action_model(other)

    mismatched = tmp_path / "mismatch.pt"
    bigger = tiny_model(num_codes=16)
    save_checkpoint(mismatched, stage=STAGE, model=bigger, config=model.config, step=3)
    with pytest.raises(CheckpointError, match="does not match"):
        load_latent_action_model(mismatched)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_latent_action_model(truncated)


def test_model_config_rejects_bad_values():
    with pytest.raises(ValueError, match="latent_grid"):
        model_config("tiny", PALETTE, latent_grid=[0, 2])
    with pytest.raises(ValueError, match="palette"):
        LatentActionModel(model_config("tiny", np.zeros((0, 3))))


def test_a_training_batch_of_one_window_is_refused() -> None:
    check_train_batch(2)
    with pytest.raises(ValueError, match="--batch_size must be at least 2"):
        check_train_batch(1)


def test_the_decoder_frozen_for_play_draws_what_the_decoder_draws():
    model = tiny_model().eval()
    context = frames(3, model.config.context_frames)
    codes = torch.tensor([[0], [1], [2]]).expand(3, model.config.num_latents)
    with torch.no_grad():
        expected = model.decode(context, codes)
    model.freeze_for_play()
    with torch.no_grad():
        for batch in (1, 3):                                              # traced at batch 1
            for dtype in (torch.uint8, torch.long):
                torch.testing.assert_close(model.decode(context[:batch].to(dtype), codes[:batch]), expected[:batch])
        with torch.no_grad():
            next(model.decoder.parameters()).add_(1.0)                    # a later change to the weights ...
        assert torch.equal(model.decode(context, codes), expected)        # ... does not reach the frozen copy
    assert not torch.equal(model.decode(context, codes), expected)       # where gradients are taken, the live decoder
