#!/usr/bin/env bash
# Sweep strategies and seeds with Hydra's multirun, then compare the runs.
set -euo pipefail
RUNS=${RUNS:-runs/tutorial5}
if [ "${GRADMANIP_DOCS_SMALL:-0}" = 1 ]; then  # the test suite: two tiny epochs per run
  TOTAL=1000 PER_EPOCH=500
else  # about two minutes per run on one CPU core
  TOTAL=40000 PER_EPOCH=2000
fi

# 1. Three strategies x two seeds = six runs, one directory each under $RUNS/sweep.
python recipes/ppo_softswitch.py -m env=SafetyPointVelocity-v0 \
  strategy=soft_switch,lagrangian,reward_only seed=0,1 \
  total_steps=$TOTAL steps_per_epoch=$PER_EPOCH eval_episodes=0 progress=false \
  hydra.sweep.dir=$RUNS/sweep

# 2. One table row per (task, algorithm, strategy), seeds as the spread; one plot.
python -m gradmanip.reporting.compare $RUNS/sweep --out $RUNS/comparison
ls $RUNS/comparison
