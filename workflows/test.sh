#!/usr/bin/env bash
# Set up (./.venv) and run the test suite (slow physics runs excluded; add `-m slow` for those).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/workflows/setup.sh"
cd "$ROOT"
python -m pytest -q "$@"
