"""Stage 4a: pair the real actions of games with the latent actions the encoder reads from their frames.

    python collect_action_latent_pairs.py                       # the recorded games in data/episodes/
    python collect_action_latent_pairs.py --live --num_live_games 5 --no-recorded   # fresh games only

Writes data/actions/action_latent_pairs.json (a list of {"action": int, "latent_code": [int, ...]}, one
per transition, as in the original), action_latent_pairs_context.npz beside it (the frames each pair
was read from, for the state-aware map), and action_latent_pairs.png (action frequencies and the codes
of each action)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm

from models.action_pairs import PairCollector, format_pair_stats, plot_pair_stats, write_pairs
from models.atari import action_meanings, make_rgb_env
from models.cli import UserError, arg, check_positive, parse_config, run_main
from models.episodes import list_episode_files, read_episode_metadata
from models.frame_dataset import IndexedGame, PaletteIndexer, load_indexed_game
from models.latent_action import load_latent_action_model
from models.players import PLAYER_KINDS, make_player
from models.recording import play_game
from models.runtime import pick_device, seed_everything


@dataclass
class CollectConfig:
    checkpoint_path: str = arg("checkpoints/latent_action/best.pt", "trained latent action model (stage 2-3)")
    episodes_dir: str = arg("data/episodes", "recorded games (.npz episodes with their actions)")
    output_path: str = arg("data/actions/action_latent_pairs.json", "pairs JSON; the context archive and plot go beside it",
                           output="file")
    recorded: bool = arg(True, "read the recorded games in --episodes_dir")
    live: bool = arg(False, "also play fresh games in the emulator and pair their steps")
    num_live_games: int = arg(5, "games played with --live")
    live_player: Literal[PLAYER_KINDS] = arg("random", "who plays the --live games (random_hold: keys held 1-4 steps, as a person tries the controls)")
    agent_checkpoint: str | None = arg(None, "DQN checkpoint for --live_player agent")
    action_noise: float = arg(0.0, "probability of a uniform random action at each step of a --live game")
    max_steps: int = arg(2000, "cap on agent steps per --live game (one step = 4 emulator frames)")
    max_games: int = arg(0, "read at most this many recorded games (0: all)")
    max_pairs: int = arg(0, "stop after this many pairs in all (0: no limit)")
    game: str = arg("Breakout", "Atari game; recorded games of another game are refused")
    batch_size: int = arg(64, "windows per encoder call")
    seed: int = arg(0, "seed of the --live games (game i uses seed + i)")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")
    device: str = arg("auto", "auto (CUDA, else MPS, else CPU), cpu, cuda or mps")

    def __post_init__(self) -> None:
        check_positive(self, "num_live_games", "max_steps", "batch_size")
        check_positive(self, "max_games", "max_pairs", "seed", "threads", "action_noise", allow_zero=True)
        if self.action_noise > 1:
            raise ValueError(f"--action_noise is a probability (0 to 1), got {self.action_noise}")
        if not (self.recorded or self.live):
            raise ValueError("nothing to collect: give --live, or keep --recorded")


PRESETS = {"quick": dict(max_games=3, max_pairs=3000, num_live_games=2, max_steps=500)}


def recorded_games(cfg: CollectConfig, indexer: PaletteIndexer):
    """(source name, game) of each recorded episode, refusing recordings of another game."""
    files = list_episode_files(cfg.episodes_dir)
    if cfg.max_games:
        files = files[:cfg.max_games]
    for path in files:
        recorded_game = read_episode_metadata(path).get("game")
        if recorded_game not in (None, cfg.game):
            raise UserError(f"episode {path} is a game of {recorded_game}, not {cfg.game} (see --game)")
        yield str(path), load_indexed_game(path, indexer)


def live_games(cfg: CollectConfig, indexer: PaletteIndexer, names: list[str]):
    """(source name, game) of each fresh game played in the emulator."""
    player = make_player(cfg.live_player, cfg.game, names, cfg.agent_checkpoint)
    env = make_rgb_env(cfg.game)
    try:
        for i in range(cfg.num_live_games):
            seed = cfg.seed + i
            ep = play_game(env, player, seed, cfg.max_steps, cfg.action_noise, len(names))
            yield f"live:{cfg.live_player}:seed={seed}", IndexedGame(frames=indexer.to_indices(ep.frames), actions=ep.actions)
    finally:
        env.close()


def main() -> None:
    cfg = parse_config(CollectConfig, __doc__.splitlines()[0], presets=PRESETS)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    model = load_latent_action_model(cfg.checkpoint_path, pick_device(cfg.device))
    names = action_meanings(cfg.game)
    indexer = PaletteIndexer(model.config.palette)
    collector = PairCollector(model, cfg.batch_size)
    sources = []
    if cfg.recorded:
        sources.append((recorded_games(cfg, indexer), "recorded games"))
    if cfg.live:
        sources.append((live_games(cfg, indexer, names), f"live {cfg.live_player} games"))
    limit = cfg.max_pairs or None
    for games, label in sources:
        for source, game in tqdm(games, desc=label, unit="game", dynamic_ncols=True):
            if game.actions.size and int(game.actions.max()) >= len(names):
                raise UserError(f"{source} has action {int(game.actions.max())}, but {cfg.game} has only {len(names)}")
            left = None if limit is None else limit - collector.num_pairs
            collector.add_game(game, source, left)
            if limit is not None and collector.num_pairs >= limit:
                break
        if limit is not None and collector.num_pairs >= limit:
            break
    pairs = collector.result({"game": cfg.game, "action_meanings": names,
                              "latent_checkpoint": str(cfg.checkpoint_path)})
    write_pairs(cfg.output_path, pairs)
    plot_path = Path(cfg.output_path).with_suffix(".png")
    plot_pair_stats(plot_path, pairs.actions, pairs.codes, names, pairs.num_codes)
    print(format_pair_stats(pairs.actions, pairs.codes, names, pairs.num_codes))
    print(f"wrote {cfg.output_path} ({len(pairs)} pairs from {len(pairs.metadata['sources'])} games), "
          f"its context archive and {plot_path}")


if __name__ == "__main__":
    run_main(main)
