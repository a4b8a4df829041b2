#!/usr/bin/env bash
# Set up (./.venv) and run a short RAVE campaign on the three-state potential.
# Results and figures land in runs/three_state_demo/ (a new directory each time:
# an existing one is kept and a numbered sibling is used).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/workflows/setup.sh"
cd "$ROOT"
out="runs/three_state_demo"
n=1
while [ -e "$out" ]; do out="runs/three_state_demo_$n"; n=$((n + 1)); done
rave run workflows/three_state.toml --workdir "$out" "$@"
