#!/usr/bin/env bash
# Create ./.venv (if missing) and install rave with its test and documentation tools from this
# repository.
# Sourced by workflows/demo.sh and workflows/test.sh; safe to run again (it only updates).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "rave needs Python >= 3.11; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11" >&2
  exit 1
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "== creating $ROOT/.venv"
  "$PYTHON" -m venv "$ROOT/.venv"
fi
VENV_PY="$ROOT/.venv/bin/python"
echo "== installing rave and its dependencies (torch 2.13.0 CPU build, OpenMM, mdtraj, ...; pymbar for the tests)"
"$VENV_PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build
"$VENV_PY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$VENV_PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[test,docs]"
export PATH="$ROOT/.venv/bin:$PATH"
