"""Learning with the trust-region rules on the toy task: CPO and PCPO end within the limit.

SafetyPointVelocity-v0 (cost limit 10 per 100-step episode; reward-only TRPO pays a cost of
about 97): on the natural-gradient base, CPO and PCPO aim at 0.8 x the limit and end, averaged
over the last three epochs, within the limit with a return far above a random policy's (about
0). Fixed seeds; about 20 s of CPU in total.
"""

import pytest
from toy_learning import SEED, final, train_on_toy_task

import safe_envs
from gradmanip.algos import NaturalGradient
from gradmanip.strategies import make_strategy

TASK = "SafetyPointVelocity-v0"
LIMIT = safe_envs.default_cost_limit(TASK)
TARGET = 0.8 * LIMIT

pytestmark = pytest.mark.usefixtures("single_thread")


def train(name: str, epochs: int = 16) -> list[dict[str, float]]:
    def natural_gradient(actor_critic):
        return NaturalGradient(
            actor_critic,
            make_strategy(name, cost_limit=TARGET),
            max_kl=0.02,
            critic_epochs=5,
            critic_batch_size=50,
            seed=SEED,
        )

    return train_on_toy_task(TASK, natural_gradient, epochs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cpo", "pcpo"])
def test_trust_region_rules_end_within_the_limit_with_high_reward(name: str) -> None:
    history = train(name)
    assert final(history, "episode_cost") <= LIMIT
    assert final(history, "episode_return") > 20.0  # a random policy earns about 0
    assert max(metrics["episode_cost"] for metrics in history) > TARGET  # the limit was active
    assert all(metrics["kl"] <= 0.02 for metrics in history)
