// Element functions shared by the CPU kernels (activations.cpp, rnn.cpp, softmax_nll.cpp): exp of x <= 0,
// sigmoid and tanh.
// float: branch-free Cephes tanhf / expf (within 2 ulp of the exact values over the whole float range; inf and
// NaN as std::tanh and 1/(1+exp(-x))), so the loops that call them vectorise; the libm calls would not and
// dominate a tanh or sigmoid layer's forward pass. double: libm. The files that use them are compiled with
// -fno-trapping-math (CMakeLists.txt), which lets the compiler if-convert the selects below.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace deepnum {

// e^x for x <= 0: Cephes expf's range reduction and polynomial. Below -87.3 (e^x < 1.2e-38) the result is 0
// (no denormals; expf would give a denormal down to -103.97, then 0 as well); NaN propagates.
[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  const float xc = x > -87.3f ? x : -87.3f;                          // NaN -> -87.3, restored below
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2), |n| <= 126
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;    // x - n·ln 2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = x < -87.3f ? 0.0f : p * scale;
  return x == x ? y : x;
}

[[gnu::always_inline]] inline float tanh_(float x) {
  const float a = std::fabs(x), z = x * x;
  float s = -5.70498872745e-3f;  // Cephes tanhf's odd polynomial, used for |x| < 0.625
  s = s * z + 2.06390887954e-2f;
  s = s * z - 5.37397155531e-2f;
  s = s * z + 1.33314422036e-1f;
  s = s * z - 3.33332819422e-1f;
  s = s * z * x + x;
  const float e = exp_nonpositive(-2.0f * a);  // tanh|x| = (1 - e^-2|x|) / (1 + e^-2|x|), no overflow
  const float l = std::copysign((1.0f - e) / (1.0f + e), x);
  return a < 0.625f ? s : l;
}

[[gnu::always_inline]] inline float sigmoid_(float x) {
  const float e = exp_nonpositive(-std::fabs(x)), q = 1.0f / (1.0f + e);
  return x >= 0.0f ? q : e * q;
}

[[gnu::always_inline]] inline double exp_nonpositive(double x) { return std::exp(x); }
[[gnu::always_inline]] inline double tanh_(double x) { return std::tanh(x); }
[[gnu::always_inline]] inline double sigmoid_(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace deepnum
