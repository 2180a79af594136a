// deepnum._contract: the argument checks of cpp/contract.h alone, for the Python backends (numba, numpy).
// No kernels and no OpenMP, so it loads wherever numpy does. Each op checks everything (including the label
// and argmax ranges the C++ kernels check themselves), allocates its outputs as numpy arrays and returns the
// full argument tuple of its kernel in deepnum/_reference.py: outputs, inputs, converted scalars.
#include <pybind11/pybind11.h>

#include "contract.h"
#include "numpy_arrays.h"

PYBIND11_MODULE(_contract, m) {
  m.doc() = "deepnum's op contract (argument checks; no kernels). Each op returns its kernel's argument tuple.";
  deepnum::contract::bind_ops<deepnum::NumpyArrays<false>>(m);
}
