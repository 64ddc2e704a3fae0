#!/usr/bin/env bash
# Creates .venv in the repo root and installs nexus-o with every optional part.
# torch is pinned to the CPU build 2.13.0 first, so that no dependency pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[all]" "torch==2.13.0"
# DeepSpeed (ZeRO-3 training; the `deepspeed` extra): a source package whose build imports torch.
.venv/bin/python -m pip install -q --no-build-isolation "deepspeed==0.19.8"
# lmms-eval without its dependency list (it pins av<16 and pulls ~60 packages its evaluator does not
# import); what it imports is in the `harness` extra above. See docs/harnesses.md.
.venv/bin/python -m pip install -q --no-deps "lmms-eval==0.7.3"
# Headless Chromium for the web demo's browser test (Playwright drives Debian's build; nothing
# is downloaded by Playwright itself). Only where apt-get runs as root; a failure here only
# makes that one test skip, with its reason.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
    || echo "warning: could not install chromium; tests/serve/test_demo_browser.py will be skipped" >&2
fi
