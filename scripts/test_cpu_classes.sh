#!/usr/bin/env bash
# The test suite once per CPU class, with OpenVINO's capability report faked (#20).
#
#   scripts/test_cpu_classes.sh [-c CLASS]... [PYTEST_ARG ...]
#
# CLASS is a key of CPU_CLASSES in test/test_backend_choice.py (avx2, avx512_vnni, avx512_bf16, amx,
# arm_fp16; default: all of them, one after another). Each run sets EIPL_TRT_CPU_CAPABILITIES to what
# OpenVINO reports on that class (read from that table, the one place it is written), so the process
# and the node processes it starts see that CPU in eipl_trt.runners.openvino.capabilities.cpu_capabilities().
# Default pytest arguments: -m "not gpu" (the whole CPU suite); PYTEST_ARGs are appended, e.g. test
# files for a subset, or another -m (pytest keeps the last one).
#
# The arithmetic itself is still this machine's: a test that runs OpenVINO at a precision decides from
# the CPU as it really is (test/real_cpu.py), so every class passes on any host.
# PYTHON (default .venv/bin/python) picks the environment; logs go to LOG_DIR (default build/cpu_classes).
# Prints pass/fail, pytest's summary and the duration per class; exits 1 when any class fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
LOG_DIR=${LOG_DIR:-$ROOT/build/cpu_classes}

table=$("$PYTHON" - <<'EOF'
import ast
tree = ast.parse(open("test/test_backend_choice.py").read())
for node in tree.body:
    if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "CPU_CLASSES":
        for name, caps in ast.literal_eval(node.value).items():
            print(name, *caps)
EOF
) || { echo "cannot read CPU_CLASSES from test/test_backend_choice.py" >&2; exit 2; }
declare -A caps
known=()
while read -r name rest; do caps[$name]=$rest; known+=("$name"); done <<< "$table"

classes=()
while [ $# -gt 0 ]; do
    case $1 in
        -c|--class) classes+=("$2"); shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done
[ ${#classes[@]} -gt 0 ] || classes=("${known[@]}")
for c in "${classes[@]}"; do
    [ -n "${caps[$c]+x}" ] || { echo "unknown CPU class '$c' (known: ${known[*]})" >&2; exit 2; }
done

mkdir -p "$LOG_DIR"
declare -A result
status=0
for c in "${classes[@]}"; do
    log="$LOG_DIR/$c.log"
    echo "== $c: EIPL_TRT_CPU_CAPABILITIES=\"${caps[$c]}\" pytest -m \"not gpu\" $*"
    t0=$(date +%s)
    EIPL_TRT_CPU_CAPABILITIES="${caps[$c]}" AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:-$(dirname "$(dirname "$PYTHON")")}" \
        "$PYTHON" -m pytest -q -p no:cacheprovider -m "not gpu" "$@" > "$log" 2>&1
    rc=$?
    t1=$(date +%s)
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|deselected|error)' "$log" | tail -1 | sed -e 's/=//g' -e 's/^ *//' -e 's/ *$//')
    verdict=$([ "$rc" = 0 ] && echo ok || echo FAILED)
    result[$c]="$verdict: ${summary:-no summary (rc $rc)}; $((t1 - t0)) s; $log"
    echo "   ${result[$c]}"
    [ "$rc" = 0 ] || { status=1; grep -E '^(FAILED|ERROR) ' "$log" | sed 's/^/   /'; }
done
echo "== CPU classes"
for c in "${classes[@]}"; do echo "  $c: ${result[$c]}"; done
exit $status
