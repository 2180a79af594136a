// deepnum._core: the ops of cpp/contract.h on numpy arrays, running the C++ kernels (cpp/kernels.h), plus the
// thread, SIMD and array-cache controls. The argument rules, their messages and the op table are contract.h's.
#include <pybind11/pybind11.h>

#include "array_cache.h"
#include "contract.h"
#include "kernels.h"
#include "numpy_arrays.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
  m.doc() = "deepnum C++ CPU kernels (OpenMP threads, run-time SIMD dispatch). Use deepnum.ops, not this module.";
  using py::arg;
  deepnum::contract::bind_ops<deepnum::NumpyArrays<true>>(m);
  m.def("set_num_threads", &deepnum::set_num_threads, arg("n"), "Set the number of OpenMP threads used by kernels.");
  m.def("get_num_threads", &deepnum::get_num_threads, "Number of OpenMP threads kernels use.");
  m.def("simd_level", &deepnum::simd_level, "SIMD instruction set the run-time dispatch picks on this CPU.");
  m.def("conv2d_winograd_applies", &deepnum::conv2d_winograd_applies, arg("N"), arg("C"), arg("H"), arg("W"),
        arg("K"), arg("R"), arg("S"), arg("sh"), arg("sw"), arg("ph"), arg("pw"),
        "Whether conv2d_forward/backward on these sizes (x (N,C,H,W), w (K,C,R,S), stride (sh,sw), padding (ph,pw)) "
        "take the F(2x2, 5x5) Winograd path: 5x5 kernels at stride 1, at least 4 channels in and out and 64 tiles "
        "of 2x2 outputs in the batch; and only when the arrays they read are finite. Otherwise they take im2col + "
        "gemm.");
  m.def("openmp_version", &deepnum::openmp_version,
        "The OpenMP version the kernels were built with (_OPENMP, yyyymm), 0 for a build without OpenMP (one thread).");
  m.def(
      "use_array_cache",
      [] {
        PyObject* previous = deepnum::use_array_cache();
        if (!previous) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(previous);
      },
      "Make NumPy allocate through deepnum's cache of large blocks in this context; returns the handler it "
      "replaces (for restore_allocator).");
  m.def(
      "restore_allocator",
      [](py::object previous) {
        PyObject* replaced = deepnum::restore_allocator(previous.ptr());
        if (!replaced) throw py::error_already_set();
        Py_DECREF(replaced);
      },
      arg("previous"), "Install again the NumPy memory handler that use_array_cache returned.");
  m.def("array_cache_bytes", &deepnum::array_cache_bytes, "Bytes of freed blocks deepnum's array cache holds.");
}
