#!/usr/bin/env bash
# Install Ray (with the dashboard and its Jobs API) from PyPI into a virtualenv cached outside
# the repository, so it does not touch the system Python and survives fresh clones. Safe to run
# again: a finished install (marked by .installed) is reused. Progress goes to stderr; the last
# line of stdout is the path of the `ray` command:
#   RAY=$(bash deploy/local/ray.sh | tail -1)
# ROVER_RAY_VENV overrides the cache folder.
set -euo pipefail

readonly RAY_VERSION=2.60.0
venv="${ROVER_RAY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/rover/ray-${RAY_VERSION}}"

say() { echo "ray.sh: $*" >&2; }

if [ ! -f "$venv/.installed" ]; then
  python=""
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$(command -v "$candidate")"; break; fi
  done
  [ -n "$python" ] || { say "no python3 found; Ray needs Python 3.10-3.12"; exit 1; }
  say "installing ray[default]==${RAY_VERSION} into $venv with $python (a few minutes)"
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ray[default]==${RAY_VERSION}" >&2
  "$venv/bin/ray" --version >&2
  touch "$venv/.installed"
fi
echo "$venv/bin/ray"
