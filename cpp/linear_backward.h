// linear_backward: dx = dy · wᵀ (skipped when dx is nullptr), dw = xᵀ · dy, db = column sums of dy, written
// with `=`. The same composition of gemm and column_sums on every device: included by cpp/linear.cpp and by
// cuda/linear.cu, each instantiating it over its own kernels (kernels.h declares them once for both).
#pragma once
#include "kernels.h"

namespace deepnum {

template <class T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, i64 N, i64 n_in, i64 n_out) {
  // dy is (N,n_out), x and dx are (N,n_in), w and dw are (n_in,n_out), db is (n_out,); dx may be nullptr
  if (dx) gemm(dx, dy, w, false, true, N, n_in, n_out);
  gemm(dw, x, dy, true, false, n_in, n_out, N);
  column_sums(db, dy, N, n_out);
}

}  // namespace deepnum
