"""Backend selection: listing, the setter/context manager, the environment variable, the fallback."""
import subprocess
import sys

import numpy as np
import pytest

import deepnum


def python(code, **env):
    import os

    done = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env))
    assert done.returncode == 0, done.stderr
    return done


def test_backends_listed():
    cuda = ["cuda"] if deepnum.cuda.is_available() else []
    assert deepnum.backends() == cuda + ["cpp", "numba", "numpy"]


def test_use_backend_is_a_setter_and_a_context_manager():
    start = deepnum.get_backend()
    with deepnum.use_backend("numpy"):
        assert deepnum.get_backend() == "numpy"
        with deepnum.use_backend("numba"):
            assert deepnum.get_backend() == "numba"
        assert deepnum.get_backend() == "numpy"
    assert deepnum.get_backend() == start
    deepnum.use_backend("numpy")
    try:
        assert deepnum.get_backend() == "numpy"
    finally:
        deepnum.use_backend(start)


def test_unknown_backend():
    with pytest.raises(ValueError, match="use_backend: unknown backend 'tpu'"):
        deepnum.use_backend("tpu")


def test_environment_variable_selects_at_import():
    done = python("import deepnum; print(deepnum.get_backend())", DEEPNUM_BACKEND="numba")
    assert done.stdout.strip().splitlines()[-1] == "numba"


def test_broken_core_falls_back_to_numba_with_a_warning():
    code = "import sys; sys.modules['deepnum._core'] = None\nimport deepnum; print(deepnum.get_backend())"
    done = python(code)
    assert done.stdout.strip().splitlines()[-1] == "numba"
    assert "C++ backend failed to import" in done.stderr


def test_set_num_threads():
    before = deepnum.get_num_threads()
    try:
        deepnum.set_num_threads(1)
        assert deepnum.get_num_threads() == 1
    finally:
        deepnum.set_num_threads(before)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            deepnum.set_num_threads(bad)


def test_kernels_called_from_two_python_threads():
    """Kernels run without the GIL; two Python threads calling one at once both get right answers."""
    import threading

    a = np.random.default_rng(0).standard_normal((300, 300)).astype(np.float32)
    results = []

    def work():
        with deepnum.use_backend("cpp"):
            results.append(deepnum.ops.gemm(a, a))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_allclose(r, a @ a, rtol=1e-4, atol=1e-3)


def test_omp_num_threads_is_honoured():
    done = python("import deepnum; print(deepnum.get_num_threads())", OMP_NUM_THREADS="1")
    assert done.stdout.strip().splitlines()[-1] == "1"
