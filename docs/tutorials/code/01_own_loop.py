"""PCRPO soft switching in a TorchRL PPO loop: TorchRL's ClipPPOLoss, collector, GAE and Adam.

The loop is TorchRL's usual PPO loop; the three lines marked CHANGE are all that safety adds.
"""

import os

import torch
from torchrl.collectors import Collector
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

import safe_envs
from gradmanip.driver import GradientDriver
from gradmanip.objectives import PerObjectiveLoss
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.models import make_actor_critic
from gradmanip.strategies import SoftSwitch

SMALL = os.environ.get("GRADMANIP_DOCS_SMALL") == "1"  # the test suite's small budget
EPOCHS = 3 if SMALL else 150
STEPS_PER_EPOCH = 2048
PASSES, MINIBATCH = 10, 64

torch.set_num_threads(1)  # small networks: one thread is fastest on a CPU
torch.manual_seed(0)
env_id = "SafetyHopperVelocity-v1"
env = safe_envs.make_env(env_id, seed=0)  # normalised observations, ("next", "cost") beside reward
cost_limit = safe_envs.default_cost_limit(env_id)  # 25 per episode
obs_dim = env.observation_spec["observation"].shape[-1]
action_dim = env.action_spec.shape[-1]

# TorchRL networks: a Gaussian actor, a reward critic and a cost critic.
nets = make_actor_critic(obs_dim, action_dim, hidden=(64, 64), init_log_std=0.0, seed=0)
actor, reward_critic, cost_critic = nets.actor, nets.reward_critic, nets.cost_critic
collector = Collector(
    env,
    actor,
    frames_per_batch=STEPS_PER_EPOCH,
    total_frames=EPOCHS * STEPS_PER_EPOCH,
    auto_register_policy_transforms=False,
)
# Reward and cost advantages: two TorchRL GAE estimators, the second one reads "cost".
reward_gae = GAE(gamma=0.99, lmbda=0.95, value_network=reward_critic)
cost_gae = GAE(gamma=0.99, lmbda=0.95, value_network=cost_critic)
cost_gae.set_keys(
    reward="cost", value="cost_value", advantage="cost_advantage", value_target="cost_value_target"
)
# The critics keep TorchRL's own loss: a ClipPPOLoss per critic, used for loss_critic only.
critic_losses = [
    ClipPPOLoss(actor, critic, critic_coeff=1.0, loss_critic_type="l2", entropy_bonus=False)
    for critic in (reward_critic, cost_critic)
]
critic_losses[1].set_keys(value="cost_value", value_target="cost_value_target")

# CHANGE 1: one ClipPPOLoss per objective (the reward, and the cost with its sign flipped).
actor_losses = PerObjectiveLoss.from_loss(
    ClipPPOLoss, actor, num_constraints=1, clip_epsilon=0.2, entropy_bonus=False
)
# CHANGE 2: the strategy, and the driver that feeds it. Band [b - 9, b + 9] around the limit b.
driver = GradientDriver(
    actor.parameters(), SoftSwitch(cost_limit, upper_slack=9.0, lower_slack=-9.0)
)
actor_optim = torch.optim.Adam(actor.parameters(), lr=3e-4)
critic_optim = torch.optim.Adam(nets.critics().parameters(), lr=3e-4)
episodes = EpisodeTracker(num_constraints=1)

for epoch, batch in enumerate(collector, start=1):
    stats = episodes.update(batch)  # finished episodes' returns and costs
    episode_cost = stats.episode_cost  # J_c_hat, float64, shape [K] = [1]
    with torch.no_grad():
        reward_gae(batch)
        cost_gae(batch)
    driver.strategy.update_state(episode_cost)  # once per epoch, before the policy update

    data = batch.reshape(-1)
    for name in ("advantage", "cost_advantage"):
        value = data[name]
        data[name] = (value - value.mean()) / (value.std() + 1e-8)
    modes = []
    for _ in range(PASSES):
        for index in torch.randperm(data.numel()).split(MINIBATCH):
            minibatch = data[index]
            losses = actor_losses(minibatch)  # loss_objective, loss_cost_objective [K]
            # CHANGE 3: the driver instead of loss.backward(); it writes -update into .grad.
            result = driver.backward(losses, episode_cost, max_norm=0.5)
            actor_optim.step()
            modes.append(int(result.diagnostics["mode"]))

            critic_optim.zero_grad()
            sum(loss(minibatch)["loss_critic"] for loss in critic_losses).backward()
            critic_optim.step()
    collector.update_policy_weights_()

    summary = stats.summary()
    mode = max(set(modes), key=modes.count)  # 0 both, 1 reward only, 2 cost only
    print(
        f"epoch {epoch:3d}  return {summary['episode_return']:7.2f}  "
        f"cost {summary['episode_cost']:6.2f} (limit {cost_limit:g})  mode {mode}"
    )
collector.shutdown()
