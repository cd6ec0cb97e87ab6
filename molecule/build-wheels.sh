#!/usr/bin/env bash
# Builds the wheelhouse the molecule scenarios install from (the containers cannot reach a
# package index): the project's wheel, made from a clean copy of the working tree (uncommitted
# changes included, build leftovers excluded), and the wheels of its backend and agent
# dependencies (kept between runs: only missing ones are fetched).
# Usage: build-wheels.sh DIR [PYTHON]   (PYTHON: the interpreter whose pip builds; default python3)
set -euo pipefail

dest=$1
python=${2:-python3}
project=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$dest"
source_copy=$(mktemp -d /var/tmp/lm-molecule-source.XXXXXX)
trap 'rm -rf "$source_copy"' EXIT

if git -C "$project" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$project" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -I{} sh -c 'test -e "$1" && printf "%s\0" "$1"' _ {} \
        | tar --null -T - -c) | tar -C "$source_copy" -x
else  # not a git checkout (e.g. an unpacked sdist): everything but build leftovers and caches
    tar -C "$project" -c --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=./.lm-dev . | tar -C "$source_copy" -x
fi
rm -f "$dest"/slurm_license_manager-*.whl
"$python" -m pip wheel -q --no-deps -w "$dest" "$source_copy" 2>&1 | grep -v '^WARNING: Location' >&2 || true
ls "$dest"/slurm_license_manager-*.whl >/dev/null
"$python" -m pip wheel -q --find-links "$dest" -w "$dest" "$(ls "$dest"/slurm_license_manager-*.whl)[backend,agent]" \
    2>&1 | grep -v '^WARNING: Location' >&2 || true
echo "$dest"
