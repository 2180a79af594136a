#!/usr/bin/env bash
# The wheel that tools/gpu-check.sh installs on the GPU machine (tools/README.md): CPython 3.12,
# deepnum._cuda required (DEEPNUM_CUDA=ON; nvcc builds sm_80 + sm_90 SASS and compute_80 PTX), built by
# tools/wheels.sh (from the sdist, repaired by auditwheel: manylinux, libgomp bundled) and copied into
# dist/, with dist/COMMIT naming the commit it was built from (bench.gpu's report shows it). Then it
# checks that the wheel holds deepnum/_core and deepnum/_cuda and that both import under that Python,
# in a throwaway folder (here, without a GPU, deepnum.cuda says why it has no device).
#
#   bash tools/build-wheel.sh              # PYTHON=python3.12 by default; wheelhouse/ is made anew
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3.12}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 12), f"{sys.executable} is Python {sys.version}, not 3.12"'
git diff --quiet HEAD -- || echo "build-wheel: the working tree has uncommitted changes: COMMIT says -dirty" >&2
rm -f dist/deepnum-*.whl dist/COMMIT
SKBUILD_CMAKE_DEFINE="DEEPNUM_CUDA=ON" PYTHON3_12=$(command -v "$PY") bash tools/wheels.sh 3.12
mkdir -p dist
cp wheelhouse/deepnum-*-cp312-cp312-manylinux_*.whl dist/
git describe --always --dirty >dist/COMMIT
wheel=$(echo dist/deepnum-*-cp312-*.whl)
[[ -f $wheel ]] || { echo "build-wheel: no cp312 wheel in dist/: $(ls dist)" >&2; exit 1; }

check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
"$PY" - "$wheel" <<'EOF'
import re, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for module in ("_core", "_cuda", "_contract"):
    if not any(re.fullmatch(rf"deepnum/{module}\.cpython-312-[^/]*\.so", n) for n in names):
        sys.exit(f"build-wheel: {sys.argv[1]} has no deepnum/{module}*.so")
EOF
"$PY" -m pip install --quiet --no-deps --target "$check/site" "$wheel"
"$PY" -m pip install --quiet --target "$check/deps" numpy
(cd "$check" && PYTHONPATH="$check/site:$check/deps" "$PY" -c '
import deepnum._core, deepnum._cuda, deepnum.cuda as cuda
print("imports under", __import__("sys").version.split()[0], "- cuda:", cuda.unavailable_reason() or cuda.device_name(),
      "- emulated:", cuda.is_emulated())')
echo "build-wheel: $wheel ($(du -h "$wheel" | cut -f1)), commit $(cat dist/COMMIT)"
