"""Backend selection: listing, the setter/context manager, the environment variable, the fallback."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import deepnum
from deepnum import _core


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


def test_threads_without_openmp_are_not_a_silent_no_op():
    """A build without OpenMP (DEEPNUM_OPENMP=OFF, or a compiler without it) runs the C++ kernels on one thread:
    asking for more warns, naming the call; with OpenMP it does not."""
    before = deepnum.get_num_threads()
    try:
        if _core.openmp_version():
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                deepnum.set_num_threads(2)
            assert _core.get_num_threads() == 2
        else:
            with pytest.warns(RuntimeWarning, match=r"set_num_threads\(2\): deepnum._core was built without OpenMP"):
                deepnum.set_num_threads(2)
            assert _core.get_num_threads() == 1
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            deepnum.set_num_threads(before)


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


def test_array_cache_reuses_large_blocks_in_its_context_only():
    """Inside ``_backend.array_cache()`` NumPy allocates through deepnum's block cache: a freed large
    block comes back for the next array of its size, zeros are zero, resizing keeps the data, and
    the default allocator is back afterwards (arrays made inside keep the cache's)."""
    from numpy._core.multiarray import get_handler_name

    from deepnum import _backend, _core

    default = get_handler_name()
    with _backend.array_cache():
        assert get_handler_name() == "deepnum_array_cache"
        a = np.full(100_000, 7.0)
        address = a.ctypes.data
        del a
        held = _core.array_cache_bytes()
        assert held >= 800_000
        b = np.zeros(100_000)  # the block a left, zero-filled
        assert b.ctypes.data == address and not b.any()
        assert _core.array_cache_bytes() == held - 802_816  # 800,000 bytes in 4 KiB pages
        b[:3] = (1, 2, 3)
        b.resize(300_000, refcheck=False)
        assert b[:3].tolist() == [1, 2, 3] and not b[3:].any()
        small = np.arange(10)  # below 64 KiB: plain malloc, still through the handler
        assert get_handler_name(small) == "deepnum_array_cache"
    assert get_handler_name() == default
    assert get_handler_name(b) == "deepnum_array_cache"
    del b, small
