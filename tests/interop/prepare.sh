#!/usr/bin/env bash
# Builds what tests/interop drives against `provision broker`, cached under build/interop:
#   linkkit-venv/  Alibaba's Python SDK with paho-mqtt<2 (requirements-linkkit.txt)
#   node/          mqtt.js from npm (package.json)
# Each is rebuilt only when its requirements file changes, so a second run takes well under a second.
# Called by scripts/setup and by the tests' session fixture. Exit 4: python3-venv, node or npm missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
src=$here/tests/interop
out=$here/build/interop
mkdir -p "$out"

stamp_of() { sha256sum "$1" | cut -c1-16; }

venv=$out/linkkit-venv
stamp=$venv/.installed-$(stamp_of "$src/requirements-linkkit.txt")
if [[ ! -f $stamp ]]; then
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv" || { echo "interop: cannot make a venv: install python3-venv" >&2; exit 4; }
    "$venv/bin/python" -m pip install -q -r "$src/requirements-linkkit.txt"
    touch "$stamp"
fi

node_dir=$out/node
stamp=$node_dir/.installed-$(stamp_of "$src/package.json")
if [[ ! -f $stamp ]]; then
    command -v npm >/dev/null || { echo "interop: npm not found: run scripts/setup as root (Debian nodejs, npm)" >&2; exit 4; }
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$src/package.json" "$node_dir/"
    npm install --prefix "$node_dir" --no-audit --no-fund --silent >/dev/null
    touch "$stamp"
fi
