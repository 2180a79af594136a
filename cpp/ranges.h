// The range checks of integer index data, with their one message each, used by the C++ kernels
// (softmax_nll.cpp, mlp.cpp, pool.cpp), by the CUDA kernels (on a host copy, once the device found a bad
// value) and by deepnum._contract (for the Python backends, whose kernels trust their input).
// Header-only so that every module has them without linking the kernels.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace deepnum {

// Throws std::invalid_argument "<op>: labels must lie in [0, n_classes), got L at row i" for the first bad label.
inline void check_labels(const char* op, const std::int64_t* labels, std::int64_t N, std::int64_t n_classes) {
  for (std::int64_t i = 0; i < N; ++i)
    if (labels[i] < 0 || labels[i] >= n_classes)
      throw std::invalid_argument(std::string(op) + ": labels must lie in [0, " + std::to_string(n_classes) +
                                  "), got " + std::to_string(labels[i]) + " at row " + std::to_string(i));
}

// Throws std::invalid_argument "<op>: argmax must lie in [0, H*W), got A at index i" for the first bad index
// of the n (flat, C order) argmax values.
inline void check_argmax(const char* op, const std::int64_t* argmax, std::int64_t n, std::int64_t plane) {
  for (std::int64_t i = 0; i < n; ++i)
    if (argmax[i] < 0 || argmax[i] >= plane)
      throw std::invalid_argument(std::string(op) + ": argmax must lie in [0, " + std::to_string(plane) + "), got " +
                                  std::to_string(argmax[i]) + " at index " + std::to_string(i));
}

}  // namespace deepnum
