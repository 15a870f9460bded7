#!/usr/bin/env bash
# Install a pinned PyTorch from PyPI into a virtualenv cached outside the repository, for the torch
# end-to-end tests and benchmarks (CPU, gloo backend). PyPI's torch is the CUDA build with its
# nvidia wheels (~5.6 GB in the venv, several minutes cold); it runs on CPU unchanged. Safe to run
# again: a finished install (marked by .installed) is reused. Progress goes to stderr; the last line
# of stdout is the venv's python:
#   PY=$(bash deploy/local/torch.sh | tail -1)
# ROVER_TORCH_VENV overrides the cache folder.
set -euo pipefail

readonly TORCH_VERSION=2.15.0
venv="${ROVER_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/rover/torch-${TORCH_VERSION}}"

say() { echo "torch.sh: $*" >&2; }

if [ ! -f "$venv/.installed" ]; then
  python=""
  for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$(command -v "$candidate")"; break; fi
  done
  [ -n "$python" ] || { say "no python3 found; torch ${TORCH_VERSION} needs Python 3.10+"; exit 1; }
  say "installing torch==${TORCH_VERSION} into $venv with $python (~5.6 GB, several minutes)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" >&2
  # numpy: torch warns without it and torch.distributed.checkpoint's planner uses it.
  "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==${TORCH_VERSION}" numpy >&2
  "$venv/bin/python" -c 'import torch, torch.distributed as d; print("torch", torch.__version__, "gloo", d.is_gloo_available())' >&2
  touch "$venv/.installed"
else
  say "torch==${TORCH_VERSION} already installed in $venv (delete the folder to reinstall)"
fi
echo "$venv/bin/python"
