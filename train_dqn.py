"""Stage 1: train a DQN agent for an Atari game (Breakout by default).

Two exploration modes:
  temperature  Boltzmann (softmax over Q, temperature annealed 1.0 -> 0.05) with prioritized replay
  rnd          an exploration agent trained on (1-alpha)*extrinsic + alpha*intrinsic (random network
               distillation) and an exploitation agent trained on extrinsic reward, sharing one
               replay buffer; the exploitation agent is evaluated and saved.
Writes checkpoints/dqn/latest.pt (everything needed to resume), best.pt (the best evaluated network
alone), metrics.csv and learning_curves.png."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from models.agent_evaluation import evaluate_agent
from models.atari import action_meanings, make_agent_vector_env
from models.checkpoint import CheckpointError, config_from_checkpoint, load_checkpoint, load_state, save_checkpoint
from models.cli import arg, check_positive, parse_config, run_main
from models.dqn import STAGE, DQNAgent, QNetworkConfig, boltzmann_actions, epsilon_greedy_actions, linear_schedule
from models.replay import PrioritizedReplayBuffer, ReplayBatch, ReplayBuffer
from models.rnd import RND, RNDConfig
from models.run_log import MetricsLog, plot_metrics
from models.runtime import pick_device, seed_everything


@dataclass
class TrainConfig:
    exploration_mode: Literal["temperature", "rnd"] = arg("temperature", "Boltzmann + prioritized replay, or RND with an explore/exploit agent pair")
    game: str = arg("Breakout", "Atari game name")
    num_steps: int = arg(1_000_000, "agent steps to train for, summed over all games (one agent step = 4 emulator frames)",
                         aliases=("total_steps",))
    max_episodes: int = arg(0, "stop after this many finished games (0: no limit)")
    num_envs: int = arg(8, "games stepped together, one network call acting for all")
    buffer_size: int = arg(300_000, "replay capacity in frames (about one per agent step; each 84x84 frame stored once)")
    min_buffer: int = arg(20_000, "agent steps collected before learning starts")
    batch_size: int = arg(32, "transitions per gradient step")
    learning_rate: float = arg(1e-4, "Adam learning rate")
    gamma: float = arg(0.99, "discount factor")
    n_step: int = arg(3, "n-step returns")
    train_every: int = arg(4, "agent steps per gradient step (the replay ratio)")
    target_update_every: int = arg(2_000, "gradient steps between target-network syncs")
    frame_stack: int = arg(8, "frames per observation")
    temperature_start: float = arg(1.0, "Boltzmann temperature at the start")
    temperature_end: float = arg(0.05, "Boltzmann temperature after annealing")
    temperature_decay_steps: int = arg(250_000, "agent steps over which the temperature anneals")
    per_alpha: float = arg(0.6, "prioritized replay exponent")
    per_beta_start: float = arg(0.4, "importance-weight exponent at the start (annealed to 1 over training)")
    epsilon: float = arg(0.01, "epsilon of the exploitation agent (rnd mode) and of evaluation")
    rnd_alpha_start: float = arg(0.5, "share of intrinsic reward for the exploration agent at the start")
    rnd_alpha_end: float = arg(0.0, "share of intrinsic reward at the end of its decay")
    rnd_alpha_decay_steps: int = arg(500_000, "agent steps over which the intrinsic share decays")
    explore_envs: float = arg(0.5, "rnd mode: share of games driven by the exploration agent")
    clip_rewards: bool = arg(True, "learn from the sign of the game reward (the true score is tracked apart)")
    terminal_on_life_loss: bool = arg(True, "a lost life ends the learner's episode (the game goes on)")
    living_penalty: float = arg(0.0, "subtracted from the reward every agent step (the original used 0.001)")
    life_loss_penalty: float = arg(0.0, "subtracted when a life is lost (the original used 1)")
    max_steps_per_episode: int = arg(10_000, "agent steps after which a game is cut")
    eval_every: int = arg(50_000, "agent steps between evaluations")
    eval_episodes: int = arg(10, "full games (all lives) per evaluation")
    save_every: int = arg(10_000, "agent steps between writes of latest.pt", aliases=("save_freq",))
    log_every: int = arg(2_000, "agent steps between rows of metrics.csv")
    output_dir: str = arg("checkpoints/dqn", "where checkpoints, metrics.csv and plots go", output="dir")
    no_save: bool = arg(False, "write no checkpoints (metrics are still logged)")
    resume: bool = arg(False, "continue from output_dir/latest.pt (the replay buffer is refilled)")
    init_from: str = arg("", "start from the Q-network of this checkpoint (e.g. best.pt or the shipped agent) "
                             "with fresh optimisers, continuing its step count and schedules", aliases=("init_checkpoint",))
    seed: int = arg(0, "random seed")
    device: str = arg("auto", "auto, cpu, cuda or mps")
    threads: int = arg(0, "torch CPU threads (0: torch's default)")
    wandb: bool = arg(False, "also log to Weights & Biases (WANDB_MODE=offline works without network)")

    def __post_init__(self) -> None:
        check_positive(self, "num_steps", "num_envs", "buffer_size", "batch_size", "n_step", "train_every",
                       "target_update_every", "frame_stack", "eval_episodes", "save_every", "log_every",
                       "max_steps_per_episode", "eval_every")
        check_positive(self, "max_episodes", "min_buffer", "threads", allow_zero=True)
        smallest = self.num_envs * (self.frame_stack + self.n_step + 1)
        if self.buffer_size < smallest:
            raise ValueError(f"--buffer_size must be at least {smallest} (num_envs * (frame_stack + n_step + 1))")
        if self.min_buffer > self.buffer_size:
            raise ValueError(f"--min_buffer ({self.min_buffer}) cannot exceed --buffer_size ({self.buffer_size})")
        if not 0.0 <= self.explore_envs <= 1.0:
            raise ValueError("--explore_envs must be between 0 and 1")


PRESETS = {
    "quick": dict(num_steps=3_000, num_envs=4, buffer_size=5_000, min_buffer=500, eval_every=1_500,
                  eval_episodes=2, save_every=1_000, log_every=500, max_steps_per_episode=500,
                  temperature_decay_steps=2_000, rnd_alpha_decay_steps=2_000, target_update_every=100),
}

CURVES = ["eval_mean_score", "eval_max_score", "train_score", "loss", "q_mean", "temperature", "rnd_alpha",
          "rnd_loss", "steps_per_second"]


class Trainer:
    """Holds the agents, buffer and environments of one run, so the loop below reads top to bottom."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.rng = seed_everything(cfg.seed)
        self.torch_rng = torch.Generator().manual_seed(cfg.seed)
        self.device = pick_device(cfg.device)
        num_actions = len(action_meanings(cfg.game))
        self.net_config = QNetworkConfig(in_frames=cfg.frame_stack, num_actions=num_actions)
        self.agent = DQNAgent(self.net_config, self.device, cfg.learning_rate)
        self.rnd_mode = cfg.exploration_mode == "rnd"
        self.explorer = DQNAgent(self.net_config, self.device, cfg.learning_rate) if self.rnd_mode else None
        self.rnd = RND(RNDConfig()).to(self.device) if self.rnd_mode else None
        buffer_args = dict(capacity=cfg.buffer_size, num_envs=cfg.num_envs, stack=cfg.frame_stack,
                           n_step=cfg.n_step, gamma=cfg.gamma, seed=cfg.seed)
        self.buffer = ReplayBuffer(**buffer_args) if self.rnd_mode else PrioritizedReplayBuffer(**buffer_args, alpha=cfg.per_alpha)
        self.envs = make_agent_vector_env(cfg.num_envs, cfg.game, stack=cfg.frame_stack, clip_rewards=cfg.clip_rewards,
                                          living_penalty=cfg.living_penalty, life_loss_penalty=cfg.life_loss_penalty,
                                          max_episode_steps=cfg.max_steps_per_episode)
        self.step = 0
        self.updates = 0
        self.episodes = 0
        self.best_eval = -np.inf
        self.num_explore = round(cfg.explore_envs * cfg.num_envs) if self.rnd_mode else 0

    # --- schedules -------------------------------------------------------------------------
    def temperature(self) -> float:
        c = self.cfg
        return linear_schedule(c.temperature_start, c.temperature_end, c.temperature_decay_steps, self.step)

    def rnd_alpha(self) -> float:
        c = self.cfg
        return linear_schedule(c.rnd_alpha_start, c.rnd_alpha_end, c.rnd_alpha_decay_steps, self.step)

    def beta(self) -> float:
        return linear_schedule(self.cfg.per_beta_start, 1.0, self.cfg.num_steps, self.step)

    # --- acting ----------------------------------------------------------------------------
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Boltzmann actions in temperature mode; in rnd mode the first games follow the explorer."""
        if not self.rnd_mode:
            q = self.agent.q_values(obs)
            return boltzmann_actions(q.cpu(), self.temperature(), self.torch_rng).numpy()
        k = self.num_explore
        actions = np.empty(len(obs), dtype=np.int64)
        if k:
            actions[:k] = boltzmann_actions(self.explorer.q_values(obs[:k]).cpu(), self.temperature(), self.torch_rng).numpy()
        if k < len(obs):
            actions[k:] = epsilon_greedy_actions(self.agent.q_values(obs[k:]), self.cfg.epsilon, self.rng)
        return actions

    # --- learning --------------------------------------------------------------------------
    def tensors(self, batch: ReplayBatch) -> dict[str, torch.Tensor]:
        d = self.device
        return dict(states=torch.as_tensor(batch.states, device=d), actions=torch.as_tensor(batch.actions, device=d),
                    returns=torch.as_tensor(batch.returns, device=d), next_states=torch.as_tensor(batch.next_states, device=d),
                    dones=torch.as_tensor(batch.dones, device=d), discounts=torch.as_tensor(batch.discounts, device=d),
                    weights=torch.as_tensor(batch.weights, device=d))

    def learn(self) -> dict[str, float]:
        if self.rnd_mode:
            return self.learn_rnd()
        batch = self.buffer.sample(self.cfg.batch_size, beta=self.beta())
        td, metrics = self.agent.update(**self.tensors(batch))
        self.buffer.update_priorities(batch.indices, td.cpu().numpy())
        return metrics

    def learn_rnd(self) -> dict[str, float]:
        """Both agents learn from the same batch; the explorer's return adds the novelty of the state
        reached after the n steps, weighted by alpha, and RND's predictor trains on those states."""
        batch = self.tensors(self.buffer.sample(self.cfg.batch_size))
        _, metrics = self.agent.update(**batch)
        alpha = self.rnd_alpha()
        intrinsic = self.rnd.intrinsic_reward(batch["next_states"])
        explore_batch = {**batch, "returns": (1 - alpha) * batch["returns"] + alpha * batch["discounts"] * intrinsic}
        _, explore_metrics = self.explorer.update(**explore_batch)
        _, rnd_metrics = self.rnd.update(batch["next_states"])
        return {**metrics, "explore_loss": explore_metrics["loss"], **rnd_metrics}

    def sync_targets(self) -> None:
        self.agent.sync_target()
        if self.explorer is not None:
            self.explorer.sync_target()

    # --- saving ----------------------------------------------------------------------------
    def save(self, path: Path, metrics: dict[str, float], resume_state: bool = True) -> None:
        """With ``resume_state`` everything --resume needs; without, the exploitation network alone (small,
        for acting, shipping and --init_from)."""
        extra: dict = dict(run_config=asdict(self.cfg))
        if resume_state:
            extra.update(agent=self.agent.state(), updates=self.updates, episodes=self.episodes,
                         best_eval=float(self.best_eval))
            if self.rnd_mode:
                extra.update(explorer=self.explorer.state(), rnd=self.rnd.state_dict(),
                             rnd_extra=self.rnd.extra_state())
        save_checkpoint(path, stage=STAGE, model=self.agent.online, config=self.net_config, step=self.step,
                        metrics=metrics, **extra)

    def start_from(self, path: Path) -> None:
        """Both agents start from a saved Q-network (targets synced, optimisers fresh)."""
        payload = load_checkpoint(path, stage=STAGE)
        if config_from_checkpoint(payload, QNetworkConfig, path) != self.net_config:
            raise CheckpointError(f"checkpoint {path} holds a Q-network of another shape ({payload['config']})")
        for agent in filter(None, (self.agent, self.explorer)):
            load_state(agent.online, payload["model"], path)
            agent.sync_target()
        self.step = payload["step"]

    def restore(self, path: Path) -> None:
        payload = load_checkpoint(path, stage=STAGE)
        self.agent.load(payload["agent"], path)
        if self.rnd_mode:
            if "explorer" not in payload:
                raise CheckpointError(f"checkpoint {path} was trained with --exploration_mode temperature, not rnd")
            self.explorer.load(payload["explorer"], path)
            self.rnd.load_state_dict(payload["rnd"])
            self.rnd.load_extra_state(payload["rnd_extra"])
        self.step, self.updates = payload["step"], payload["updates"]
        self.episodes, self.best_eval = payload["episodes"], payload["best_eval"]


def main() -> None:
    cfg = parse_config(TrainConfig, __doc__.splitlines()[0], presets=PRESETS)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    trainer = Trainer(cfg)
    if cfg.resume:
        trainer.restore(out / "latest.pt")
    elif cfg.init_from:
        trainer.start_from(Path(cfg.init_from))
    log = MetricsLog(out / "metrics.csv", use_wandb=cfg.wandb, run_config=asdict(cfg),
                     resume_step=trainer.step if cfg.resume or cfg.init_from else 0)
    envs, buffer = trainer.envs, trainer.buffer
    obs, _ = envs.reset(seed=[cfg.seed * 1000 + trainer.step + i for i in range(cfg.num_envs)])
    buffer.start(obs[:, -1])
    recent_scores: list[float] = []
    metrics: dict[str, float] = {}
    learn_from = trainer.step + cfg.min_buffer  # a resumed run refills its buffer first
    bar = tqdm(total=cfg.num_steps, initial=trainer.step, unit="step", dynamic_ncols=True)
    last_time, last_step = time.time(), trainer.step
    while trainer.step < cfg.num_steps and not (cfg.max_episodes and trainer.episodes >= cfg.max_episodes):
        actions = trainer.act(obs)
        next_obs, rewards, terminated, truncated, info = envs.step(actions)
        ended = terminated | truncated
        final_obs = np.stack([info["final_obs"][i] if ended[i] else next_obs[i] for i in range(cfg.num_envs)])
        dones = terminated | (cfg.terminal_on_life_loss & info["life_lost"])
        if ended.any():
            recent_scores.extend(info["final_info"]["score"][ended].tolist())
            trainer.episodes += int(ended.sum())
        buffer.add(actions, rewards, dones, final_obs[:, -1], ended, next_obs[:, -1])
        obs = next_obs
        prev_step = trainer.step
        trainer.step += cfg.num_envs
        bar.update(cfg.num_envs)

        if trainer.step >= learn_from:
            for _ in range(trainer.step // cfg.train_every - prev_step // cfg.train_every):
                metrics = trainer.learn()
                trainer.updates += 1
                if trainer.updates % cfg.target_update_every == 0:
                    trainer.sync_targets()

        if crossed(prev_step, trainer.step, cfg.log_every):
            now = time.time()
            row = {**metrics, "steps_per_second": (trainer.step - last_step) / (now - last_time),
                   "episodes": trainer.episodes, "rnd_alpha" if trainer.rnd_mode else "temperature":
                   trainer.rnd_alpha() if trainer.rnd_mode else trainer.temperature()}
            if recent_scores:
                row["train_score"] = float(np.mean(recent_scores[-20:]))
            log.log(trainer.step, row)
            last_time, last_step = now, trainer.step
            bar.set_postfix(score=f"{row.get('train_score', 0):.1f}", loss=f"{metrics.get('loss', 0):.4f}",
                            **({"alpha": f"{trainer.rnd_alpha():.3f}"} if trainer.rnd_mode else {"temp": f"{trainer.temperature():.3f}"}))

        if crossed(prev_step, trainer.step, cfg.eval_every) or trainer.step >= cfg.num_steps:
            evaluate_and_save(trainer, log, out)
        elif not cfg.no_save and crossed(prev_step, trainer.step, cfg.save_every):
            trainer.save(out / "latest.pt", {})
    bar.close()
    envs.close()
    log.close()
    plot_metrics(out / "metrics.csv", out / "learning_curves.png", CURVES, title=f"DQN ({cfg.exploration_mode}) on {cfg.game}")
    print(f"best evaluation mean score {trainer.best_eval:.1f}; outputs in {out}")


def crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in (before, after]."""
    return after // every > before // every


def evaluate_and_save(trainer: Trainer, log: MetricsLog, out: Path) -> None:
    """Play full games with the exploitation agent; save latest.pt, and best.pt when it improves."""
    cfg = trainer.cfg
    result = evaluate_agent(lambda o: trainer.agent.q_values(o).argmax(dim=-1).cpu().numpy(), cfg.game,
                            cfg.eval_episodes, cfg.max_steps_per_episode, seed=10_000 + trainer.step,
                            stack=cfg.frame_stack, epsilon=cfg.epsilon)
    scores = {"eval_mean_score": result.mean, "eval_max_score": result.max, "eval_mean_length": float(result.lengths.mean()),
              "eval_distinct_games": float(result.distinct_games)}
    log.log(trainer.step, scores)
    tqdm.write(f"step {trainer.step}: eval mean {result.mean:.1f}, max {result.max:.0f} over {cfg.eval_episodes} games "
               f"({result.distinct_games} distinct)")
    if cfg.no_save:
        return
    improved = result.mean > trainer.best_eval
    trainer.best_eval = max(trainer.best_eval, result.mean)
    trainer.save(out / "latest.pt", scores)
    if improved:
        trainer.save(out / "best.pt", scores, resume_state=False)


if __name__ == "__main__":
    run_main(main)
