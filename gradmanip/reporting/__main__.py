"""``python -m gradmanip.reporting RUN_DIR ... --out OUT``: the comparison command."""

from gradmanip.reporting.compare import main

main()
