// Constants shared by every language of deepnum, defined here once: the activation codes (cpp/, cuda/, and
// exported by every compiled module as ACTIVATIONS {name: code} and RNN_ACTIVATIONS (names the RNN accepts)).
// Plain C++ (no pybind11, no CUDA): included by the kernels, the device code and the bindings.
#pragma once

namespace deepnum {

// X(name, code, enumerator, rnn): every activation, in code order; rnn: whether the RNN kernels accept it.
#define DEEPNUM_ACTIVATIONS(X)      \
  X(linear, 0, kLinear, true)       \
  X(sigmoid, 1, kSigmoid, true)     \
  X(tanh, 2, kTanh, true)           \
  X(relu, 3, kRelu, true)           \
  X(leaky_relu, 4, kLeakyRelu, false)

#define DEEPNUM_ACTIVATION_ENUM(name, code, enumerator, rnn) enumerator = code,
enum Activation : int { DEEPNUM_ACTIVATIONS(DEEPNUM_ACTIVATION_ENUM) };
#undef DEEPNUM_ACTIVATION_ENUM

struct ActivationInfo {
  const char* name;
  int code;
  bool rnn;
};

#define DEEPNUM_ACTIVATION_INFO(name, code, enumerator, rnn) {#name, code, rnn},
inline constexpr ActivationInfo kActivations[] = {DEEPNUM_ACTIVATIONS(DEEPNUM_ACTIVATION_INFO)};
#undef DEEPNUM_ACTIVATION_INFO

}  // namespace deepnum
