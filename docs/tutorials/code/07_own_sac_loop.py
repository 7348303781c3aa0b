"""PCRPO soft switching on an off-policy actor: a TorchRL SAC loop (collector, replay buffer,
SoftUpdate) around SafeSACLoss, whose actor steps through a GradientDriver.

The loop is TorchRL's usual SAC loop; the lines marked CHANGE are all that safety adds.
"""

import os

import torch
from torchrl.collectors import Collector
from torchrl.data import LazyTensorStorage, TensorDictReplayBuffer
from torchrl.objectives import SoftUpdate

import safe_envs
from gradmanip.driver import GradientDriver
from gradmanip.objectives import SafeSACLoss
from gradmanip.rl.episodes import EpisodeTracker
from gradmanip.rl.sac_models import make_sac_networks
from gradmanip.strategies import SoftSwitch

SMALL = os.environ.get("GRADMANIP_DOCS_SMALL") == "1"  # the test suite's small budget
EPOCHS = 2 if SMALL else 16
STEPS_PER_EPOCH = 200  # two 100-step episodes
FRAMES_PER_BATCH = 10  # collect 10 steps, then 5 gradient steps: one update every second step
WARMUP = 200  # uniformly random actions, no update, for the first steps

torch.set_num_threads(1)  # small networks: one thread is fastest on a CPU
torch.manual_seed(0)
env_id = "SafetyPointVelocity-v0"
env = safe_envs.make_env(env_id, seed=0)  # ("next", "cost") beside ("next", "reward")
cost_limit = safe_envs.default_cost_limit(env_id)  # 10 per 100-step episode
obs_dim = env.observation_spec["observation"].shape[-1]
action_dim = env.action_spec.shape[-1]

# TorchRL networks: a tanh-Gaussian actor, a reward critic and a cost critic (templates).
nets = make_sac_networks(obs_dim, action_dim, hidden=(32, 32), seed=0)
collector = Collector(
    env,
    nets.actor,
    frames_per_batch=FRAMES_PER_BATCH,
    total_frames=EPOCHS * STEPS_PER_EPOCH,
    init_random_frames=WARMUP,
    auto_register_policy_transforms=False,
)
buffer = TensorDictReplayBuffer(storage=LazyTensorStorage(10_000), batch_size=64)

# CHANGE 1: TorchRL's SACLoss with a cost critic and one actor loss per objective.
loss = SafeSACLoss(nets.actor, nets.qvalue, nets.cost_qvalue, gamma=0.9)
target_updater = SoftUpdate(loss, tau=0.005)
# CHANGE 2: the strategy and its driver. Both objectives up to 8, the cost alone above it.
target = 0.8 * cost_limit
driver = GradientDriver(
    nets.actor.parameters(), SoftSwitch(target, upper_slack=0.0, lower_slack=-target)
)
critic_params = [
    *loss.qvalue_network_params.values(True, True),
    *loss.cost_qvalue_network_params.values(True, True),
]
actor_optim = torch.optim.Adam(nets.actor.parameters(), lr=1e-3)
critic_optim = torch.optim.Adam(critic_params, lr=3e-3)
alpha_optim = torch.optim.Adam([loss.log_alpha], lr=3e-3)
# J_c_hat off-policy: the mean cost of the last 2 finished episodes.
episodes = EpisodeTracker(num_constraints=1, cost_window=2)

frames, updates, returns, costs, modes = 0, 0, [], [], []
for batch in collector:
    buffer.extend(batch.reshape(-1))
    finished = episodes.update(batch)
    returns += finished.returns.tolist()
    costs += finished.costs[:, 0].tolist()
    if frames % STEPS_PER_EPOCH == 0:
        driver.strategy.update_state(episodes.episode_cost)  # once per epoch
    frames += batch.numel()
    if frames > WARMUP:
        for _ in range(FRAMES_PER_BATCH // 2):
            sample = buffer.sample()
            losses = loss.critic_losses(sample)  # loss_qvalue, loss_cost_qvalue
            losses.update(loss.actor_losses(sample))  # loss_objective, loss_entropy, ...
            # CHANGE 3: the driver instead of loss.backward(); it writes -update into .grad.
            result = driver.backward(losses, episodes.episode_cost)
            modes.append(int(result.diagnostics["mode"]))

            critic_optim.zero_grad()
            (losses["loss_qvalue"] + losses["loss_cost_qvalue"]).backward()
            critic_optim.step()
            actor_optim.step()
            alpha_optim.zero_grad()
            losses["loss_alpha"].backward()
            alpha_optim.step()
            target_updater.step()
            updates += 1
    if frames % STEPS_PER_EPOCH == 0:
        mode = max(set(modes), key=modes.count) if modes else "-"  # 0 both, 1 reward, 2 cost
        print(
            f"epoch {frames // STEPS_PER_EPOCH:2d}  return {sum(returns) / len(returns):6.2f}  "
            f"cost {sum(costs) / len(costs):5.2f} (limit {cost_limit:g})  mode {mode}"
        )
        returns, costs, modes = [], [], []
collector.shutdown()
print(f"{updates} gradient steps on {frames} environment steps")
