"""The emulated CUDA build (DEEPNUM_CUDA=EMULATE, cuda/emulate/) catches what it promises to: a missing
__syncthreads gives a wrong answer, a barrier that some threads skip and a shuffle naming an exited lane are
errors, a launch past the hardware's limits is refused; and a normal install is never the emulated build."""
import numpy as np
import pytest

from deepnum import cuda

emulated = [pytest.mark.emulated,
            pytest.mark.skipif(not cuda.is_emulated(), reason="not the emulated CUDA build (DEEPNUM_CUDA=EMULATE)")]


def selftest(name, base=0):
    from deepnum import _cuda
    return np.array(_cuda._emulation_selftest(name, base))


pytestmark = emulated


@pytest.mark.parametrize("base", [0, 1000, 2000])
def test_a_barrier_orders_shared_memory(base):
    expected = base + (np.arange(64) + 1) % 64
    np.testing.assert_array_equal(selftest("rotate", base), expected)
    # without the __syncthreads, thread t reads s[t+1] before thread t+1 has stored it: wrong, every time
    assert (selftest("rotate_without_barrier", base + 1) != expected + 1).any()


def test_a_barrier_some_threads_skip_is_an_error():
    with pytest.raises(RuntimeError, match=r"divergent_barrier_kernel.*63 threads wait at __syncthreads but 1 have exited"):
        selftest("divergent_barrier")


def test_warp_shuffles_by_lane():
    np.testing.assert_array_equal(selftest("warp_sum"), np.full(64, 32 * 33 // 2))


def test_a_shuffle_with_an_exited_lane_is_an_error():
    with pytest.raises(RuntimeError, match=r"lane 31 of warp 0 has exited"):
        selftest("shuffle_exited_lane")


@pytest.mark.parametrize("name, fault", [
    ("block_of_1025", r"grid \(1, 1, 1\) and block \(1025, 1, 1\): more threads per block than the hardware's 1024"),
    ("block_z_65", r"grid \(1, 1, 1\) and block \(1, 1, 65\): more threads per block"),
    ("grid_y_65536", r"grid \(1, 65536, 1\) and block \(1, 1, 1\): a grid past the hardware's limits"),
    ("grid_of_0", r"grid \(0, 1, 1\) and block \(1, 1, 1\): a grid or block dimension of 0"),
])
def test_launches_past_the_hardware_limits_are_refused(name, fault):
    with pytest.raises(RuntimeError, match=r"CUDA emulation: launch of .*noop_kernel.* with " + fault):
        selftest(name)


def test_an_unknown_selftest_is_a_value_error():
    with pytest.raises(ValueError, match="no test named 'nope'"):
        selftest("nope")


def test_info_says_emulated():
    from deepnum import _cuda
    assert _cuda.EMULATED is True and cuda.is_available() and "emulated on the CPU" in cuda.device_name()
