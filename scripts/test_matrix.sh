#!/usr/bin/env bash
# The Python x ROS 2 wheel matrix (`make test-matrix`; `.ci/run` runs one combination).
#
#   scripts/test_matrix.sh [COMBO ...]     default: py3.10-kilted py3.12-kilted py3.12-jazzy py3.10-jazzy
#
# COMBO is py<X.Y>-<kilted|jazzy>. Each gets its own virtual environment (.venv-<COMBO>), made with
# that Python's own venv and pip, and the package installed with `pip install .` (PEP 517):
#   *-kilted  the whole suite: requirements/test.txt with the Kilted wheels (requirements/ros.txt);
#   *-jazzy   the node tests (test/test_node*.py) with the Jazzy wheels (requirements/ros-jazzy.txt,
#             rclpy 7.1.6) and only what they need: runtime, pytest, rosbags, onnx, OpenCV (compressed frames).
# Python 3.11 with Kilted and torch is `make test` itself. torch 2.13 (CPU) is on this machine for
# Python 3.11 only; for 3.10 and 3.12 pip would fetch a multi-GB CUDA build, so these environments go
# without torch: tests that export or train skip, and the node tests take their random-weight ONNX
# models from the cache a run with torch fills (test/model_cache.py; run `make test` first).
# A Python that is not installed is reported and skipped; any failing combination fails the script.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PIP_FLAGS=(-q --disable-pip-version-check)
combos=("$@")
[ ${#combos[@]} -gt 0 ] || combos=(py3.10-kilted py3.12-kilted py3.12-jazzy py3.10-jazzy)

find_python() {  # python$1 on PATH, else the newest pyenv install of it
    if "python$1" -c '' 2>/dev/null; then command -v "python$1"; return; fi
    local v
    v=$(pyenv versions --bare 2>/dev/null | grep -E "^${1//./\\.}\.[0-9]+$" | tail -1)
    [ -n "$v" ] && [ -x "$(pyenv root)/versions/$v/bin/python$1" ] && echo "$(pyenv root)/versions/$v/bin/python$1"
}

requirements() {  # $1 kilted|jazzy: the requirement lines for that family, -r paths made absolute
    if [ "$1" = kilted ]; then
        sed -e '/^torch[=<>~ ]/d' -e "s|^-r |-r $ROOT/requirements/|" requirements/test.txt
    else
        # onnx: the node tests build fp16/int8 variants; OpenCV: compressed frames
        printf '%s\n' "-r $ROOT/requirements/runtime.txt" "-r $ROOT/requirements/ros-jazzy.txt" \
            "pytest>=7" "rosbags>=0.10" "onnx>=1.15" "opencv-python-headless>=4.8"
    fi
}

declare -A result
status=0
for combo in "${combos[@]}"; do
    version=${combo#py}; version=${version%%-*}; family=${combo#*-}
    venv="$ROOT/.venv-$combo"
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== $combo: Python $version is not installed; skipped"
        result[$combo]="skipped (no python$version)"
        continue
    fi
    echo "== $combo: $($python -V) with the $family wheels in $venv"
    t0=$(date +%s)
    req="$venv/requirements.txt"
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv" || { result[$combo]="FAILED (venv)"; status=1; continue; }
        # The whole-suite set is large: the bundled pip 23.0 (3.10) backtracks on it for tens of minutes,
        # so those venvs get a current pip. The node-test venvs keep the bundled one, so each run also
        # checks that an old pip builds and installs the package (PEP 517, console scripts included).
        [ "$family" = kilted ] && "$venv/bin/python" -m pip install "${PIP_FLAGS[@]}" --upgrade pip
    fi
    if ! requirements "$family" | cmp -s - "$req"; then  # new or changed requirements
        requirements "$family" > "$req.new"
        if ! "$venv/bin/pip" install "${PIP_FLAGS[@]}" -r "$req.new"; then
            result[$combo]="FAILED (pip install)"; status=1; rm -f "$req.new"; continue
        fi
        mv "$req.new" "$req"
    fi
    if ! "$venv/bin/pip" install "${PIP_FLAGS[@]}" --no-deps --force-reinstall .; then
        result[$combo]="FAILED (pip install .)"; status=1; continue
    fi
    for cmd in eipl-trt eipl_trt_node; do  # what the legacy `setup.py install` fallback failed to create
        [ -x "$venv/bin/$cmd" ] || { result[$combo]="FAILED (no $cmd after pip install .)"; status=1; continue 2; }
    done
    t1=$(date +%s)
    tests=()
    [ "$family" = jazzy ] && tests=(test/test_node*.py)
    rclpy=$("$venv/bin/python" -c 'from importlib.metadata import version; print(version("ros-rclpy"))' 2>/dev/null)
    AMENT_PREFIX_PATH="$venv" "$venv/bin/python" -m pytest -q -p no:cacheprovider "${tests[@]}" 2>&1 \
        | tee "$venv/pytest.log" | tail -n 25
    rc=${PIPESTATUS[0]}
    t2=$(date +%s)
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error)' "$venv/pytest.log" | tail -1 | sed 's/=//g')
    verdict=$([ "$rc" = 0 ] && echo ok || echo FAILED)
    result[$combo]="$verdict: rclpy $rclpy; ${summary# }; setup $((t1 - t0)) s, tests $((t2 - t1)) s"
    [ "$rc" = 0 ] || status=1
done
echo "== matrix (Python 3.11 + Kilted + torch is \`make test\`)"
for combo in "${combos[@]}"; do echo "  $combo: ${result[$combo]}"; done
exit $status
