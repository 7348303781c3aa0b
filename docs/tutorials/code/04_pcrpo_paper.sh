#!/usr/bin/env bash
# The paper's PCRPO setting (recipes/config/pcrpo_paper.yaml) at a small budget.
set -euo pipefail
RUNS=${RUNS:-runs/tutorial4}
if [ "${GRADMANIP_DOCS_SMALL:-0}" = 1 ]; then  # the test suite: toy task, two tiny epochs
  ENV=SafetyPointVelocity-v0 TOTAL=2000 PER_EPOCH=1000 SAFETY_FROM=1
else  # ten epochs of the paper's 16,000 steps on SafetyWalker2d-v4
  ENV=SafetyWalker2d-v4 TOTAL=160000 PER_EPOCH=16000 SAFETY_FROM=4
fi

# 1. The run: natural-gradient steps per objective, combined by soft switching with slack.
python recipes/pcrpo_paper.py env=$ENV seed=0 \
  total_steps=$TOTAL steps_per_epoch=$PER_EPOCH safety_start_epoch=$SAFETY_FROM \
  eval_episodes=1 progress=false hydra.run.dir=$RUNS/$ENV/seed0

# 2. What it wrote: per-epoch metrics, the run description, the final summary.
ls $RUNS/$ENV/seed0
cat $RUNS/$ENV/seed0/summary.json
