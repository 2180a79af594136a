"""Element functions of the Numba kernels (activations.py, rnn.py): sigmoid and tanh, as cpp/activation_math.h.

float32: the branch-free Cephes tanhf / expf of activation_math.h (within 2 ulp over the whole range; inf and
NaN as np.tanh and 1/(1+exp(-x))), so that the loops calling them vectorize: Numba's np.tanh and np.exp call
the C library once per element (np.tanh about 10 ns per element on an AVX2 core). float64: np.tanh and np.exp.
``tanh_`` and ``sigmoid_`` pick the version by the argument's type when a kernel is compiled (and are cached with
that kernel). The functions
that divide use error_model="numpy" (x / 0 is inf, as in NumPy): Python's ZeroDivisionError check is a branch
that keeps a loop from vectorizing.
"""
import llvmlite.ir
import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic, overload

f32 = np.float32
_LO = f32(-87.3)  # e^x < 1.2e-38 below: 0 (no denormals)


@intrinsic
def _float32_from_bits(typingctx, bits):
    # the float32 whose bit pattern is the int32 ``bits`` (a bitcast; it vectorizes)
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvmlite.ir.FloatType())

    return types.float32(types.int32), codegen


@numba.njit(cache=True, nogil=True)
def _exp_nonpositive(x):
    # e^x for float32 x <= 0: Cephes expf's range reduction and polynomial; NaN propagates
    xc = x if x > _LO else _LO
    n = (xc * f32(1.44269504088896341) + f32(12582912.0)) - f32(12582912.0)  # round(x / ln 2)
    r = (xc - n * f32(0.693359375)) - n * f32(-2.12194440e-4)  # x - n·ln 2 in two parts
    p = f32(1.9875691500e-4)
    p = p * r + f32(1.3981999507e-3)
    p = p * r + f32(8.3334519073e-3)
    p = p * r + f32(4.1665795894e-2)
    p = p * r + f32(1.6666665459e-1)
    p = p * r + f32(5.0000001201e-1)
    p = p * (r * r) + r + f32(1.0)
    scale = _float32_from_bits(np.int32((np.int32(n) + 127) << 23))  # 2^n
    y = f32(0.0) if x < _LO else p * scale
    return y if x == x else x


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tanh32(x):
    a, z = abs(x), x * x
    s = f32(-5.70498872745e-3)  # Cephes tanhf's odd polynomial, used for |x| < 0.625
    s = s * z + f32(2.06390887954e-2)
    s = s * z - f32(5.37397155531e-2)
    s = s * z + f32(1.33314422036e-1)
    s = s * z - f32(3.33332819422e-1)
    s = s * z * x + x
    e = _exp_nonpositive(f32(-2.0) * a)  # tanh|x| = (1 - e^-2|x|) / (1 + e^-2|x|), no overflow
    t = (f32(1.0) - e) / (f32(1.0) + e)
    l = t if x >= f32(0.0) else -t  # NaN: t is NaN
    return s if a < f32(0.625) else l


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _sigmoid32(x):
    e = _exp_nonpositive(-abs(x))
    q = f32(1.0) / (f32(1.0) + e)
    return q if x >= f32(0.0) else e * q  # NaN: e and q are NaN


def tanh_(x):
    """tanh of a float32 or float64 scalar, inside jitted code."""
    raise NotImplementedError("tanh_ is for jitted code")


def sigmoid_(x):
    """1 / (1 + e^-x) of a float32 or float64 scalar, inside jitted code."""
    raise NotImplementedError("sigmoid_ is for jitted code")


@overload(tanh_, jit_options={"error_model": "numpy"})
def _tanh_impl(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    return lambda x: np.tanh(x)


@overload(sigmoid_, jit_options={"error_model": "numpy"})
def _sigmoid_impl(x):
    if x == types.float32:
        return lambda x: _sigmoid32(x)
    one = 1.0
    return lambda x: one / (one + np.exp(-x))  # exp(-x) = inf gives the right limit, 0
