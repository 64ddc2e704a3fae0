#!/usr/bin/env bash
# Creates .venv in the repo root and installs nexus-o with every optional part.
# torch is pinned to the CPU build 2.13.0 first, so that no dependency pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all]" "torch==2.13.0"
