#!/usr/bin/env bash
# Set up (./.venv) and run the test suite, the documentation build (Sphinx, warnings as errors,
# tests/test_docs.py) included; slow physics runs are excluded (add `-m slow` for those).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/workflows/setup.sh"
cd "$ROOT"
python -m pytest -q "$@"
