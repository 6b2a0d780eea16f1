#!/usr/bin/env bash
# Create (once) the separate Flower environment used only by the side-by-side benchmarks.
#
# Flower is a peer we measure against, never a dependency of the product: it lives in
# .venv-flwr, next to the product's .venv, and the product's requirements never mention it.
# Idempotent: a stamp file records the pins that were installed; rerunning with the same
# pins does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FLWR_VENV:-$ROOT/.venv-flwr}"
PYTHON="${PYTHON:-python3}"

# torch is always pinned: that version is the CPU build; an unpinned torch pulls CUDA.
PINS=(
  "flwr[simulation]==1.41.0"
  "torch==2.13.0"
  "numpy==2.4.6"
  "scikit-learn==1.9.1"
  "pydantic==2.14.3"
  "pyyaml==6.0.3"
  "psutil==7.2.2"
)
STAMP="$VENV/.flwr-bench-installed"
WANT="$(printf '%s\n' "${PINS[@]}")"

if [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]; then
  exit 0
fi

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
# This machine's extra local indexes make pip warn for every package it lacks; keep real errors.
quiet_pip() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
quiet_pip install --quiet --upgrade pip
quiet_pip install --quiet "${PINS[@]}"
"$VENV/bin/python" -m pip check
printf '%s\n' "$WANT" > "$STAMP"
echo "Flower benchmark environment ready: $VENV"
