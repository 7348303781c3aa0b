#!/usr/bin/env bash
# The sweep of tutorial 5, launched as Ray tasks on a local Ray instance.
set -euo pipefail
RUNS=${RUNS:-runs/tutorial6}
if [ "${GRADMANIP_DOCS_SMALL:-0}" = 1 ]; then  # the test suite: two tiny epochs per run
  TOTAL=1000 PER_EPOCH=500
else
  TOTAL=40000 PER_EPOCH=2000
fi

# Ray starts for the sweep with two CPUs; every run is one Ray task reserving one CPU.
python recipes/ppo_softswitch.py -m hydra/launcher=ray \
  +hydra.launcher.ray.init.num_cpus=2 +hydra.launcher.ray.init.include_dashboard=false \
  env=SafetyPointVelocity-v0 strategy=soft_switch,lagrangian seed=0,1 \
  total_steps=$TOTAL steps_per_epoch=$PER_EPOCH eval_episodes=0 progress=false \
  hydra.sweep.dir=$RUNS/sweep

python -m gradmanip.reporting.compare $RUNS/sweep --out $RUNS/comparison
