#!/usr/bin/env bash
# The whole GPU verification (issue 13) in one run of at most 8 minutes, for a GPU machine without
# network (tools/README.md says how to run it there):
#
#   bash tools/gpu-check.sh OUTDIR [WHEEL]
#
# Stages, in this order, each timed and under a hard time limit (timeout), its exit status in
# OUTDIR/summary.txt; a failed stage does not stop the later ones, but none runs without deepnum:
#   probe      the machine: nvidia-smi, nvcc, cmake, compute-sanitizer, python3 and its packages
#   install    WHEEL (tools/build-wheel.sh) by pip --no-deps --no-index; if that fails or no WHEEL is
#              given, this working tree by pip --no-build-isolation; then deepnum._core and _cuda must import
#   cuda       deepnum.cuda.is_available() on a real device (not the emulated build), and its name
#   pytest     every gpu test with DEEPNUM_CUDA_SYNC=1 DEEPNUM_REQUIRE_GPU=1; a single skip fails it
#   driver     tools/cuda_ops_once.py (every op once at edge shapes) with DEEPNUM_CUDA_SYNC=1, then under
#   memcheck   compute-sanitizer --tool memcheck,
#   racecheck  --tool racecheck
#   bench      python -m bench.gpu --device-check: deepnum vs PyTorch on the GPU, epochs vs cpp on the host
#   report     python -m bench.gpu_report: RESULTS-gpu.md from bench-gpu.json
#   initcheck  compute-sanitizer --tool initcheck on the driver, last: it gets the time that is left
# OUTDIR holds 8 files at most: summary.txt probe.txt install.log pytest.log sanitizer.log bench.log
# bench-gpu.json RESULTS-gpu.md. The exit status is 0 only when every stage passed.
#
# Environment: GPU_CHECK_SECONDS (default 470) is the budget of the whole run: a stage gets its own
# limit or what is left, and none starts with under 10 s left. STAGES="bench report" runs only the
# stages named (a rerun on a warm machine where deepnum is installed already).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF=$ROOT/tools/gpu-check.sh

find_sanitizer() {
  local p
  for p in "$(command -v compute-sanitizer || true)" /usr/local/cuda/bin/compute-sanitizer \
           /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    if [[ -n $p && -x $p ]]; then echo "$p"; return 0; fi
  done
  return 1
}

# ---- the stages with more than one command (run as: bash gpu-check.sh --stage NAME ARGS) ----------

stage_probe() {  # never fails: what is missing shows in probe.txt and in the stage that needs it
  set +e
  local tool
  echo "## $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname)"; uname -a; echo "cores: $(nproc)"; free -g; df -h / /tmp
  for tool in nvidia-smi nvcc cmake ninja python3; do
    echo "## $tool: $(command -v "$tool" || echo "MISSING from PATH")"
  done
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,clocks.max.mem --format=csv
  nvcc --version || /usr/local/cuda/bin/nvcc --version  # CMake looks in /usr/local/cuda/bin too
  cmake --version | head -1   # scikit-build-core (the source fallback) needs >= 3.31.9 (pyproject.toml)
  ninja --version
  echo "## compute-sanitizer: $(find_sanitizer || echo "MISSING (PATH, /usr/local/cuda/bin, /usr/local/cuda/compute-sanitizer)")"
  find_sanitizer >/dev/null && "$(find_sanitizer)" --version
  echo "## $(python3 --version) at $(command -v python3)"
  python3 -m pip list 2>/dev/null |
    grep -iE '^(numpy|numba|tqdm|torch|pytest|hypothesis|pybind11|scikit.build.core|cmake|ninja|matplotlib) '
  python3 -c 'import torch; ok = torch.cuda.is_available()
print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU:", torch.cuda.get_device_name(0) if ok else "none")'
  echo "## wheel: ${1:-none given}; commit: ${DEEPNUM_COMMIT:-unknown}"
  return 0
}

imports() {
  python3 -c 'import deepnum, deepnum._core, deepnum._cuda
print("deepnum", deepnum.__version__, "at", deepnum.__file__, "- emulated:", deepnum.cuda.is_emulated())'
}

stage_install() {  # WHEEL, else the working tree
  if [[ -n ${1:-} ]]; then
    echo "## pip install $1"
    if python3 -m pip install --no-deps --no-index --force-reinstall "$1" && imports; then
      echo "NOTE: the wheel $(basename "$1")"
      return 0
    fi
    echo "## the wheel failed (above): building this working tree instead"
  fi
  python3 -m pip install --no-deps --no-index --no-build-isolation --force-reinstall \
    -Ccmake.define.DEEPNUM_CUDA=ON -Cbuild-dir=/tmp/deepnum-build "$ROOT"
  imports
  echo "NOTE: built from the working tree${1:+ (the wheel failed)}"
}

stage_cuda() {
  python3 -c 'import deepnum, deepnum.cuda as cuda
reason = cuda.unavailable_reason()
assert reason is None, f"deepnum.cuda is unavailable: {reason}"
assert not cuda.is_emulated(), "deepnum._cuda is the emulated build (DEEPNUM_CUDA=EMULATE), not a GPU build"
print("backends:", deepnum.backends())
print("NOTE:", cuda.device_name())'
}

stage_pytest() {  # every gpu test; pytest's own result, then: no skip, at least one test
  local xml=${TMPDIR:-/tmp}/gpu-check-junit.xml rc=0
  rm -f "$xml"
  DEEPNUM_CUDA_SYNC=1 DEEPNUM_REQUIRE_GPU=1 python3 -m pytest -m gpu -q -rs --maxfail=30 --junitxml="$xml" || rc=$?
  python3 - "$xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
print(f"NOTE: {n['tests']} gpu tests, {n['failures']} failed, {n['errors']} errors, {n['skipped']} skipped")
if n["skipped"]:
    sys.exit(f"{n['skipped']} gpu tests skipped (SKIPPED lines above): on the GPU machine none may skip")
if not n["tests"]:
    sys.exit("no gpu tests ran")
EOF
  return "$rc"
}

stage_sanitizer() {  # TOOL: compute-sanitizer --tool TOOL on the driver
  local cs
  cs=$(find_sanitizer) || { echo "compute-sanitizer not found (PATH, /usr/local/cuda/bin)"; return 127; }
  DEEPNUM_CUDA_SYNC=1 "$cs" --tool "$1" --error-exitcode 1 python3 "$ROOT/tools/cuda_ops_once.py"
}

if [[ ${1:-} == --stage ]]; then
  "stage_$2" "${@:3}"
  exit
fi

# ---- the run --------------------------------------------------------------------------------------

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: bash tools/gpu-check.sh OUTDIR [WHEEL]   (one wheel: $# arguments given)" >&2
  exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
WHEEL=""
if [[ -n ${2:-} ]]; then
  [[ -f $2 ]] || { echo "gpu-check: no wheel at $2" >&2; exit 2; }
  WHEEL=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
fi
cd "$ROOT"
if [[ -n $WHEEL && -f $(dirname "$WHEEL")/COMMIT ]]; then
  DEEPNUM_COMMIT=$(cat "$(dirname "$WHEEL")/COMMIT")  # written by tools/build-wheel.sh
elif git rev-parse --git-dir >/dev/null 2>&1; then
  DEEPNUM_COMMIT=$(git describe --always --dirty)
fi
export DEEPNUM_COMMIT=${DEEPNUM_COMMIT:-unknown} PYTHONUNBUFFERED=1
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_BREAK_SYSTEM_PACKAGES=1  # offline; python3 may be the system's
unset DEEPNUM_CUDA_SYNC  # set per stage: the benchmarks must run without it

BUDGET=${GPU_CHECK_SECONDS:-470}
STAGES=${STAGES:-probe install cuda pytest driver memcheck racecheck bench report initcheck}
T0=${EPOCHREALTIME/./}
SUMMARY=$OUT/summary.txt
FAILED=()
printf 'gpu-check: %s, commit %s, wheel %s, budget %ss\n%-10s %5s %8s %6s  %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$DEEPNUM_COMMIT" "$(basename "${WHEEL:-none}")" "$BUDGET" stage rc seconds limit note >"$SUMMARY"

elapsed() { echo $(((${EPOCHREALTIME/./} - T0) / 1000000)); }

# run NAME LIMIT LOG COMMAND...: COMMAND under timeout, its output appended to LOG; one line in SUMMARY.
run() {
  local name=$1 limit=$2 log=$OUT/$3 left rc=0 start size note
  shift 3
  [[ " $STAGES " == *" $name "* ]] || return 0
  left=$((BUDGET - $(elapsed)))
  if ((left < 10)); then
    printf '%-10s %5s %8s %6s  %s\n' "$name" - - - "not run: the ${BUDGET}s budget is spent" >>"$SUMMARY"
    FAILED+=("$name")
    return 0
  fi
  ((limit <= left)) || limit=$left
  echo "[$(elapsed)s] $name (limit ${limit}s) -> $(basename "$log")"
  printf '\n===== %s (limit %ss): %s\n' "$name" "$limit" "$*" >>"$log"
  size=$(stat -c %s "$log")  # what the stage writes starts here
  start=${EPOCHREALTIME/./}
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1 || rc=$?
  note=$(tail -c +$((size + 1)) "$log" | sed -n 's/^NOTE: //p' | tail -n 1)
  if ((rc != 0)) && [[ -z $note ]]; then  # a failure's note: the stage's last line of output
    note=$(tail -c +$((size + 1)) "$log" | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c 1-160 || true)
  fi
  if ((rc == 124 || rc == 137)); then note="TIMED OUT after ${limit}s${note:+; $note}"; fi
  printf '%-10s %5s %8s %6s  %s\n' "$name" "$rc" \
    "$(awk -v us=$((${EPOCHREALTIME/./} - start)) 'BEGIN { printf "%.1f", us / 1e6 }')" "$limit" "$note" >>"$SUMMARY"
  if ((rc != 0)); then
    FAILED+=("$name")
    echo "---- $name failed (rc $rc); the end of its output in $(basename "$log"):"
    tail -c +$((size + 1)) "$log" | tail -n 30
  fi
}

run probe 30 probe.txt bash "$SELF" --stage probe "$WHEEL"
run install 240 install.log bash "$SELF" --stage install "$WHEEL"
if [[ " ${FAILED[*]} " == *" install "* ]]; then
  STAGES=""  # nothing else can run without deepnum
  printf '%-10s %5s %8s %6s  %s\n' "(the rest)" - - - "not run: deepnum is not installed" >>"$SUMMARY"
fi
run cuda 30 probe.txt bash "$SELF" --stage cuda
run pytest 150 pytest.log bash "$SELF" --stage pytest
run driver 40 sanitizer.log env DEEPNUM_CUDA_SYNC=1 python3 tools/cuda_ops_once.py
run memcheck 70 sanitizer.log bash "$SELF" --stage sanitizer memcheck
run racecheck 70 sanitizer.log bash "$SELF" --stage sanitizer racecheck
run bench 180 bench.log python3 -m bench.gpu --device-check --out "$OUT/bench-gpu.json"
run report 20 bench.log python3 -m bench.gpu_report "$OUT/bench-gpu.json" --md "$OUT/RESULTS-gpu.md"
run initcheck 70 sanitizer.log bash "$SELF" --stage sanitizer initcheck

if ((${#FAILED[@]})); then
  echo "RESULT: FAILED (${FAILED[*]}) in $(elapsed)s" >>"$SUMMARY"
else
  echo "RESULT: every stage passed in $(elapsed)s" >>"$SUMMARY"
fi
echo
cat "$SUMMARY"
((${#FAILED[@]} == 0))
