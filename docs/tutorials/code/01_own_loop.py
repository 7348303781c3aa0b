"""PCRPO soft switching inside a hand-written TorchRL PPO loop."""

import os

import torch
from torchrl.collectors import Collector
from torchrl.objectives.value import GAE

import safe_envs
from gradmanip.directions import GradientDriver
from gradmanip.episodes import EpisodeTracker
from gradmanip.models import make_actor_critic
from gradmanip.strategies import SoftSwitch

SMALL = os.environ.get("GRADMANIP_DOCS_SMALL") == "1"  # the test suite's small budget
EPOCHS = 3 if SMALL else 40
STEPS_PER_EPOCH = 1000  # ten 100-step episodes of the toy task
PASSES, MINIBATCH, CLIP = 10, 100, 0.2

torch.set_num_threads(1)  # small networks: one thread is fastest on a CPU
torch.manual_seed(0)
env_id = "SafetyPointVelocity-v0"
env = safe_envs.make_env(env_id, seed=0)
cost_limit = safe_envs.default_cost_limit(env_id)  # 10 per episode

# 1. TorchRL networks: a Gaussian actor, a reward critic and a cost critic.
nets = make_actor_critic(obs_dim=1, action_dim=1, hidden=(64, 64), seed=0)
actor, reward_critic, cost_critic = nets.actor, nets.reward_critic, nets.cost_critic
collector = Collector(
    env,
    actor,
    frames_per_batch=STEPS_PER_EPOCH,
    total_frames=EPOCHS * STEPS_PER_EPOCH,
    auto_register_policy_transforms=False,
)

# 2. Reward and cost advantages: two TorchRL GAE estimators, the second one reads "cost".
reward_gae = GAE(gamma=0.99, lmbda=0.95, value_network=reward_critic)
cost_gae = GAE(gamma=0.99, lmbda=0.95, value_network=cost_critic)
cost_gae.set_keys(
    reward="cost", value="cost_value", advantage="cost_advantage", value_target="cost_value_target"
)

# 3. The strategy and the driver that feeds it. Band [b - 1, b + 1] around the limit b.
strategy = SoftSwitch(cost_limit=cost_limit, upper_slack=1.0, lower_slack=-1.0)
driver = GradientDriver(actor.parameters(), strategy)
actor_optim = torch.optim.Adam(actor.parameters(), lr=3e-4)
critic_optim = torch.optim.Adam(nets.critics().parameters(), lr=1e-3)
episodes = EpisodeTracker(num_constraints=1)

history = []
for epoch, batch in enumerate(collector, start=1):
    stats = episodes.update(batch)  # finished episodes' returns and costs
    episode_cost = stats.episode_cost.float()  # J_c_hat, shape [K] = [1]
    with torch.no_grad():
        reward_gae(batch)
        cost_gae(batch)
    strategy.update_state(episode_cost)  # once per epoch, before the policy update

    data = batch.reshape(-1)
    for name in ("advantage", "cost_advantage"):
        value = data[name]
        data[name] = (value - value.mean()) / (value.std() + 1e-8)
    modes = []
    for _ in range(PASSES):
        for index in torch.randperm(data.numel()).split(MINIBATCH):
            mb = data[index]
            # One actor forward gives both clipped surrogates (PPO, Schulman et al. 2017).
            log_prob = actor.get_dist(mb).log_prob(mb["action"])
            ratio = (log_prob - mb["action_log_prob"]).exp()
            clipped = ratio.clamp(1 - CLIP, 1 + CLIP)
            adv, cost_adv = mb["advantage"].squeeze(-1), mb["cost_advantage"].squeeze(-1)
            reward_loss = -torch.min(ratio * adv, clipped * adv).mean()  # to minimise
            cost_loss = torch.max(ratio * cost_adv, clipped * cost_adv).mean()  # to minimise
            # g_r = -grad(reward_loss), g_c = -grad(cost_loss); the strategy combines them and
            # the driver writes -update into .grad, so Adam steps along the update.
            result = driver.step(reward_loss, [cost_loss], episode_cost)
            actor_optim.step()
            modes.append(int(result.diagnostics["mode"]))

            critic_optim.zero_grad()
            critic_loss = (reward_critic(mb)["state_value"] - mb["value_target"]).pow(2).mean()
            critic_loss = critic_loss + (
                (cost_critic(mb)["cost_value"] - mb["cost_value_target"]).pow(2).mean()
            )
            critic_loss.backward()
            critic_optim.step()
    collector.update_policy_weights_()

    summary = stats.summary()
    history.append(summary)
    mode = max(set(modes), key=modes.count)  # 0 both, 1 reward only, 2 cost only
    print(
        f"epoch {epoch:3d}  return {summary['episode_return']:7.2f}  "
        f"cost {summary['episode_cost']:6.2f} (limit {cost_limit:g})  mode {mode}"
    )
collector.shutdown()
