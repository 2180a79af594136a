// The array adapter of cpp/contract.h for numpy arrays: deepnum._core (Runs = true: the C++ kernels) and
// deepnum._contract (Runs = false: the argument tuple of the Python kernels).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <vector>

#include "kernels.h"

namespace deepnum {

template <bool Runs>
struct NumpyArrays {
  using Array = pybind11::array;
  static constexpr const char* kTypeName = "numpy.ndarray";
  static constexpr bool kRuns = Runs;
  static constexpr bool kHost = true;

  static bool is_array(pybind11::handle h) { return pybind11::isinstance<pybind11::array>(h); }
  static Array cast(pybind11::handle h) { return pybind11::reinterpret_borrow<pybind11::array>(h); }
  static pybind11::object object(const Array& a) { return a; }
  static int ndim(const Array& a) { return static_cast<int>(a.ndim()); }
  static i64 dim(const Array& a, int i) { return a.shape(i); }
  static i64 size(const Array& a) { return a.size(); }
  static pybind11::dtype dtype(const Array& a) { return a.dtype(); }
  static bool c_contiguous(const Array& a) { return (a.flags() & pybind11::array::c_style) != 0; }
  static bool writable(const Array& a) { return a.writeable(); }
  static void* data(const Array& a) { return const_cast<void*>(a.data()); }
  static Array empty(const std::vector<i64>& shape, const pybind11::dtype& d) {
    return Array(d, std::vector<pybind11::ssize_t>(shape.begin(), shape.end()));
  }
  static Array zeros(const std::vector<i64>& shape, const pybind11::dtype& d) {
    Array a = empty(shape, d);
    std::memset(a.mutable_data(), 0, a.nbytes());
    return a;
  }
};

}  // namespace deepnum
