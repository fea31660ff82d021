#!/usr/bin/env bash
# Create .venv and install rpx-bench with its test dependencies (CPU torch).
# GPU users: run `pip install torch` for their CUDA version first instead of the CPU wheel
# (see README), then `pip install -e '.[test]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU wheel first, pinned: letting pip resolve plain `torch` pulls a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e '.[test]'
# Bytecode for the checkout's own modules, as `pip install` writes for installed packages: an editable install
# leaves it to the first import, which never writes it where PYTHONDONTWRITEBYTECODE is set (containers), and
# then every `rpx` command compiles ~150 modules again (~0.1 s). Stale files are simply recompiled in memory.
.venv/bin/python -m compileall -q rpx_tasks flows
