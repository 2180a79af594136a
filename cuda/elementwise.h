// The per-element arithmetic of the CUDA kernels, shared by device and host code.
//
// Every function is inline and DN_HD (__host__ __device__ under nvcc, nothing for the host
// compiler), so the kernels in cuda/*.cu and the host copies bound into deepnum._cuda
// (`_host_*`, tested on the CPU against deepnum._reference without a GPU) run the same source.
// The formulas and their order of operations are those of cpp/activations.cpp, dropout.cpp,
// updates.cpp and softmax_nll.cpp. Plain C math (expf, exp, ...) exists on both sides.
#pragma once
#include <math.h>

#include <cstdint>

#include "../cpp/constants.h"

#ifdef __CUDACC__
#define DN_HD __host__ __device__
#else
#define DN_HD
#endif

namespace deepnum {
namespace ew {

// Activation codes: deepnum::Activation of cpp/constants.h (kLinear, kSigmoid, ...), found from here unqualified.

DN_HD inline float exp_(float x) { return expf(x); }
DN_HD inline double exp_(double x) { return exp(x); }
DN_HD inline float log_(float x) { return logf(x); }
DN_HD inline double log_(double x) { return log(x); }
DN_HD inline float tanh_(float x) { return tanhf(x); }
DN_HD inline double tanh_(double x) { return tanh(x); }
DN_HD inline float sqrt_(float x) { return sqrtf(x); }
DN_HD inline double sqrt_(double x) { return sqrt(x); }

// ---- activations: forward from x, backward through the saved output y ----------------------

template <class T>
DN_HD inline T activation_forward(T x, int act, T alpha) {
  switch (act) {
    case kSigmoid: return T(1) / (T(1) + exp_(-x));  // exp(-x) = inf gives the right limit, 0
    case kTanh: return tanh_(x);
    case kRelu: return x <= T(0) ? T(0) : x;
    case kLeakyRelu: return x <= T(0) ? alpha * x : x;
    default: return x;  // kLinear
  }
}

template <class T>
DN_HD inline T activation_backward(T y, T dy, int act, T alpha) {
  switch (act) {
    case kSigmoid: return dy * y * (T(1) - y);
    case kTanh: return dy * (T(1) - y * y);
    case kRelu: return y > T(0) ? dy : T(0);
    case kLeakyRelu: return y > T(0) ? dy : alpha * dy;
    default: return dy;  // kLinear
  }
}

// ---- dropout: the counter-based uniform draw of element i (cpp/dropout.cpp) ----------------

DN_HD inline double dropout_uniform(std::uint64_t seed, std::int64_t i) {
  std::uint64_t z = seed + static_cast<std::uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(static_cast<std::int64_t>(z >> 11)) * 0x1p-53;  // exact: 53 bits
}

// mask value of element i: 1/(1-p) (passed in as scale) when kept, else 0
template <class T>
DN_HD inline T dropout_mask(std::uint64_t seed, std::int64_t i, double p, T scale) {
  return dropout_uniform(seed, i) >= p ? scale : T(0);
}

// ---- parameter updates (cpp/updates.cpp); scalars already rounded to T -------------------

// One SGD step of one element; velocity == nullptr means no momentum buffer.
template <class T>
DN_HD inline void sgd_step(T& param, T* velocity, T grad, T lr, T momentum, bool nesterov, T wd) {
  const T g = grad + wd * param;
  if (velocity == nullptr) {
    param = param - lr * g;
    return;
  }
  const T v = momentum * *velocity + g;
  *velocity = v;
  param = param - lr * (nesterov ? g + momentum * v : v);
}

// One Adam step of one element; c1 = 1 - b1^step, c2 = 1 - b2^step.
template <class T>
DN_HD inline void adam_step(T& param, T& m, T& v, T grad, T lr, T b1, T one_b1, T b2, T one_b2, T eps, T wd, T c1,
                            T c2) {
  const T g = grad + wd * param;
  const T mi = b1 * m + one_b1 * g;
  const T vi = b2 * v + one_b2 * g * g;
  m = mi;
  v = vi;
  param = param - lr * (mi / c1) / (sqrt_(vi / c2) + eps);
}

// ---- softmax + NLL pieces (cpp/softmax_nll.cpp) --------------------------------------------

template <class T>
DN_HD inline T max_(T a, T b) {
  return b > a ? b : a;  // as cpp: m = l[j] > m ? l[j] : m
}

// exp of a logit shifted by its row maximum m
template <class T>
DN_HD inline T softmax_term(T logit, T m) {
  return exp_(logit - m);
}

// the row's loss from the sum of its softmax terms and its label's shifted logit l[label] - m
template <class T>
DN_HD inline T nll(T sum, T target_shifted) {
  return log_(sum) - target_shifted;
}

// dlogits element: (p - [j == label]) / n
template <class T>
DN_HD inline T softmax_nll_grad(T p, bool is_label, T n) {
  return (is_label ? p - T(1) : p) / n;
}

}  // namespace ew
}  // namespace deepnum
