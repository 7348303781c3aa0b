"""The paper's PCRPO setting: natural-gradient steps combined by soft switching with slack.

    python recipes/pcrpo_paper.py                                # SafetyWalker2d-v4, seed 0
    python recipes/pcrpo_paper.py env=SafetyReacher-v4 seed=2
    python recipes/pcrpo_paper.py -m env=SafetyWalker2d-v4,SafetyHumanoidStandup-v4 seed=0,1,2

Same training loop as ``ppo_softswitch.py``; only the configuration (``config/pcrpo_paper.yaml``)
differs: it carries the authors' hyperparameters.
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from ppo_softswitch import train

from gradmanip.experiment.exit_status import exit_with_status


@hydra.main(config_path="config", config_name="pcrpo_paper", version_base=None)
def main(cfg: DictConfig) -> None:
    with exit_with_status():
        train(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
