// pybind11 bindings of the CPU kernels: argument checks, GIL release, calls into kernels.
//
// Each function has the kernel's name and the signature shared by every backend
// (outputs first; sizes are read off the arrays). Outputs are preallocated by deepnum.ops.
// Every array must already have the right dtype, be C-contiguous and (outputs) writable:
// nothing is converted or copied here, so a wrong array is a TypeError and a wrong shape a
// ValueError (std::invalid_argument), each naming the op — never a write out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <vector>

#include "array_cache.h"
#include "kernels.h"

namespace py = pybind11;
using deepnum::i64;

namespace {

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::string shape_str(const std::vector<i64>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

[[noreturn]] void value_error(const char* op, const std::string& msg) {
  throw std::invalid_argument(std::string(op) + ": " + msg);
}

// Checks dtype, layout and writability; returns the data pointer.
template <class T>
T* ptr(const py::array& a, const char* op, const char* name, bool writable = false) {
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(std::string(op) + ": " + name + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                         ", expected " + py::str(py::dtype::of<T>()).cast<std::string>());
  if (!(a.flags() & py::array::c_style))
    throw py::type_error(std::string(op) + ": " + name + " must be C-contiguous");
  if (writable && !a.writeable()) throw py::type_error(std::string(op) + ": " + name + " is read-only");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// An optional output: an array of size 0 stands for "not wanted" and gives nullptr.
template <class T>
T* optional_ptr(const py::array& a, const char* op, const char* name) {
  return a.size() != 0 ? ptr<T>(a, op, name, true) : nullptr;
}

void expect_shape(const py::array& a, const std::vector<i64>& shape, const char* op, const char* name) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) value_error(op, std::string(name) + " has shape " + shape_str(a) + ", expected " + shape_str(shape));
}

void expect_ndim(const py::array& a, py::ssize_t ndim, const char* op, const char* name) {
  if (a.ndim() != ndim)
    value_error(op, std::string(name) + " must be " + std::to_string(ndim) + "-D, got shape " + shape_str(a));
  for (py::ssize_t i = 0; i < ndim; ++i)
    if (a.shape(i) == 0) value_error(op, std::string(name) + " has a zero-size dimension: " + shape_str(a));
}

void expect_positive(i64 v, const char* op, const char* name) {
  if (v <= 0) value_error(op, std::string(name) + " must be positive, got " + std::to_string(v));
}

// Calls f(T{}) with T = float or double according to the dtype of the array a.
template <class F>
auto by_dtype(const char* op, const py::array& a, F&& f) {
  if (a.dtype().equal(py::dtype::of<float>())) return f(float{});
  if (a.dtype().equal(py::dtype::of<double>())) return f(double{});
  throw py::type_error(std::string(op) + ": expected float32 or float64, got " + py::str(a.dtype()).cast<std::string>());
}

i64 conv_out(i64 in, i64 k, i64 stride, i64 pad, const char* op) {
  if (in + 2 * pad < k)
    value_error(op, "kernel size " + std::to_string(k) + " exceeds padded input size " + std::to_string(in + 2 * pad));
  return (in + 2 * pad - k) / stride + 1;
}

// ---- gemm / linear -----------------------------------------------------------------------

void gemm(py::array c, py::array a, py::array b, bool trans_a, bool trans_b) {
  const char* op = "gemm";
  expect_ndim(a, 2, op, "a");
  expect_ndim(b, 2, op, "b");
  const i64 M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const i64 Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb) value_error(op, "inner dimensions differ: a " + shape_str(a) + ", b " + shape_str(b));
  expect_shape(c, {M, N}, op, "c");
  by_dtype(op, a, [&](auto t) {
    using T = decltype(t);
    T* pc = ptr<T>(c, op, "c", true);
    const T *pa = ptr<T>(a, op, "a"), *pb = ptr<T>(b, op, "b");
    py::gil_scoped_release nogil;
    deepnum::gemm<T>(pc, pa, pb, trans_a, trans_b, M, N, K);
  });
}

void linear_forward(py::array y, py::array x, py::array w, py::array b) {
  const char* op = "linear_forward";
  expect_ndim(x, 2, op, "x");
  expect_ndim(w, 2, op, "w");
  const i64 N = x.shape(0), n_in = x.shape(1), n_out = w.shape(1);
  expect_shape(w, {n_in, n_out}, op, "w");
  expect_shape(b, {n_out}, op, "b");
  expect_shape(y, {N, n_out}, op, "y");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y", true);
    const T *px = ptr<T>(x, op, "x"), *pw = ptr<T>(w, op, "w"), *pb = ptr<T>(b, op, "b");
    py::gil_scoped_release nogil;
    deepnum::linear_forward<T>(py_, px, pw, pb, N, n_in, n_out);
  });
}

void linear_backward(py::array dx, py::array dw, py::array db, py::array dy, py::array x, py::array w) {
  const char* op = "linear_backward";
  expect_ndim(x, 2, op, "x");
  expect_ndim(w, 2, op, "w");
  const i64 N = x.shape(0), n_in = x.shape(1), n_out = w.shape(1);
  expect_shape(w, {n_in, n_out}, op, "w");
  expect_shape(dy, {N, n_out}, op, "dy");
  if (dx.size() != 0) expect_shape(dx, {N, n_in}, op, "dx");  // size 0: dx not wanted
  expect_shape(dw, {n_in, n_out}, op, "dw");
  expect_shape(db, {n_out}, op, "db");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T *pdx = optional_ptr<T>(dx, op, "dx"), *pdw = ptr<T>(dw, op, "dw", true), *pdb = ptr<T>(db, op, "db", true);
    const T *pdy = ptr<T>(dy, op, "dy"), *px = ptr<T>(x, op, "x"), *pw = ptr<T>(w, op, "w");
    py::gil_scoped_release nogil;
    deepnum::linear_backward<T>(pdx, pdw, pdb, pdy, px, pw, N, n_in, n_out);
  });
}

// ---- fused MLP step -----------------------------------------------------------------------

double mlp_train_step(const std::vector<py::array>& ws, const std::vector<py::array>& bs, const std::vector<int>& acts,
                      py::array x, py::array labels, double lr, double weight_decay, double alpha) {
  const char* op = "mlp_train_step";
  const i64 layers = static_cast<i64>(ws.size());
  if (layers == 0) value_error(op, "no layers");
  if (static_cast<i64>(bs.size()) != layers || static_cast<i64>(acts.size()) != layers)
    value_error(op, "ws, bs and acts must have one entry per layer, got " + std::to_string(ws.size()) + ", " +
                        std::to_string(bs.size()) + " and " + std::to_string(acts.size()));
  expect_ndim(x, 2, op, "x");
  const i64 N = x.shape(0);
  std::vector<i64> sizes{x.shape(1)};
  for (i64 l = 0; l < layers; ++l) {
    const std::string w_name = "ws[" + std::to_string(l) + "]", b_name = "bs[" + std::to_string(l) + "]";
    expect_ndim(ws[l], 2, op, w_name.c_str());
    expect_shape(ws[l], {sizes.back(), ws[l].shape(1)}, op, w_name.c_str());
    sizes.push_back(ws[l].shape(1));
    expect_shape(bs[l], {sizes.back()}, op, b_name.c_str());
    if (acts[l] < deepnum::kLinear || acts[l] > deepnum::kLeakyRelu)
      value_error(op, "unknown activation code " + std::to_string(acts[l]));
  }
  expect_shape(labels, {N}, op, "labels");
  const i64* plab = ptr<i64>(labels, op, "labels");
  return by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    std::vector<T*> pw(layers), pb(layers);
    for (i64 l = 0; l < layers; ++l) {
      pw[l] = ptr<T>(ws[l], op, "ws", true);
      pb[l] = ptr<T>(bs[l], op, "bs", true);
    }
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    return deepnum::mlp_train_step<T>(pw.data(), pb.data(), acts.data(), sizes.data(), layers, px, plab, N, lr,
                                      weight_decay, alpha);
  });
}

// ---- conv2d ------------------------------------------------------------------------------

struct ConvShape {
  i64 N, C, H, W, K, R, S, P, Q;
};

ConvShape conv_shape(const py::array& x, const py::array& w, i64 sh, i64 sw, i64 ph, i64 pw, const char* op) {
  expect_ndim(x, 4, op, "x");
  expect_ndim(w, 4, op, "w");
  expect_positive(sh, op, "stride_h");
  expect_positive(sw, op, "stride_w");
  if (ph < 0 || pw < 0) value_error(op, "padding must be >= 0");
  ConvShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2), w.shape(3), 0, 0};
  if (s.C != w.shape(1))
    value_error(op, "x " + shape_str(x) + " has " + std::to_string(s.C) + " channels but w " + shape_str(w) +
                        " expects " + std::to_string(w.shape(1)));
  s.P = conv_out(s.H, s.R, sh, ph, op);
  s.Q = conv_out(s.W, s.S, sw, pw, op);
  return s;
}

void conv2d_forward(py::array y, py::array x, py::array w, py::array b, i64 sh, i64 sw, i64 ph, i64 pw) {
  const char* op = "conv2d_forward";
  const ConvShape s = conv_shape(x, w, sh, sw, ph, pw, op);
  expect_shape(b, {s.K}, op, "b");
  expect_shape(y, {s.N, s.K, s.P, s.Q}, op, "y");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y", true);
    const T *px = ptr<T>(x, op, "x"), *pw_ = ptr<T>(w, op, "w"), *pb = ptr<T>(b, op, "b");
    py::gil_scoped_release nogil;
    deepnum::conv2d_forward<T>(py_, px, pw_, pb, s.N, s.C, s.H, s.W, s.K, s.R, s.S, sh, sw, ph, pw);
  });
}

void conv2d_backward(py::array dx, py::array dw, py::array db, py::array dy, py::array x, py::array w, i64 sh,
                     i64 sw, i64 ph, i64 pw) {
  const char* op = "conv2d_backward";
  const ConvShape s = conv_shape(x, w, sh, sw, ph, pw, op);
  expect_shape(dy, {s.N, s.K, s.P, s.Q}, op, "dy");
  if (dx.size() != 0) expect_shape(dx, {s.N, s.C, s.H, s.W}, op, "dx");  // size 0: dx not wanted
  expect_shape(dw, {s.K, s.C, s.R, s.S}, op, "dw");
  expect_shape(db, {s.K}, op, "db");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T *pdx = optional_ptr<T>(dx, op, "dx"), *pdw = ptr<T>(dw, op, "dw", true), *pdb = ptr<T>(db, op, "db", true);
    const T *pdy = ptr<T>(dy, op, "dy"), *px = ptr<T>(x, op, "x"), *pw_ = ptr<T>(w, op, "w");
    py::gil_scoped_release nogil;
    deepnum::conv2d_backward<T>(pdx, pdw, pdb, pdy, px, pw_, s.N, s.C, s.H, s.W, s.K, s.R, s.S, sh, sw, ph, pw);
  });
}

// ---- max-pool ----------------------------------------------------------------------------

void max_pool2d_forward(py::array y, py::array argmax, py::array x, i64 size_h, i64 size_w, i64 sh, i64 sw) {
  const char* op = "max_pool2d_forward";
  expect_ndim(x, 4, op, "x");
  expect_positive(size_h, op, "size_h");
  expect_positive(size_w, op, "size_w");
  expect_positive(sh, op, "stride_h");
  expect_positive(sw, op, "stride_w");
  const i64 N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const i64 P = conv_out(H, size_h, sh, 0, op), Q = conv_out(W, size_w, sw, 0, op);
  expect_shape(y, {N, C, P, Q}, op, "y");
  expect_shape(argmax, {N, C, P, Q}, op, "argmax");
  i64* pidx = ptr<i64>(argmax, op, "argmax", true);
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y", true);
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    deepnum::max_pool2d_forward<T>(py_, pidx, px, N, C, H, W, size_h, size_w, sh, sw);
  });
}

void max_pool2d_backward(py::array dx, py::array dy, py::array argmax) {
  const char* op = "max_pool2d_backward";
  expect_ndim(dx, 4, op, "dx");
  expect_ndim(dy, 4, op, "dy");
  const i64 N = dx.shape(0), C = dx.shape(1), H = dx.shape(2), W = dx.shape(3), P = dy.shape(2), Q = dy.shape(3);
  expect_shape(dy, {N, C, P, Q}, op, "dy");
  expect_shape(argmax, {N, C, P, Q}, op, "argmax");
  const i64* pidx = ptr<i64>(argmax, op, "argmax");
  by_dtype(op, dx, [&](auto t) {
    using T = decltype(t);
    T* pdx = ptr<T>(dx, op, "dx", true);
    const T* pdy = ptr<T>(dy, op, "dy");
    py::gil_scoped_release nogil;
    deepnum::max_pool2d_backward<T>(pdx, pdy, pidx, N, C, H, W, P, Q);
  });
}

// ---- softmax + NLL -----------------------------------------------------------------------

double softmax_nll_forward(py::array probs, py::array logits, py::array labels) {
  const char* op = "softmax_nll_forward";
  expect_ndim(logits, 2, op, "logits");
  const i64 N = logits.shape(0), n_classes = logits.shape(1);
  expect_shape(labels, {N}, op, "labels");
  expect_shape(probs, {N, n_classes}, op, "probs");
  const i64* plab = ptr<i64>(labels, op, "labels");
  return by_dtype(op, logits, [&](auto t) {
    using T = decltype(t);
    T* pp = ptr<T>(probs, op, "probs", true);
    const T* pl = ptr<T>(logits, op, "logits");
    py::gil_scoped_release nogil;
    return deepnum::softmax_nll_forward<T>(pp, pl, plab, N, n_classes);
  });
}

void softmax_nll_backward(py::array dlogits, py::array probs, py::array labels) {
  const char* op = "softmax_nll_backward";
  expect_ndim(probs, 2, op, "probs");
  const i64 N = probs.shape(0), n_classes = probs.shape(1);
  expect_shape(labels, {N}, op, "labels");
  expect_shape(dlogits, {N, n_classes}, op, "dlogits");
  const i64* plab = ptr<i64>(labels, op, "labels");
  by_dtype(op, probs, [&](auto t) {
    using T = decltype(t);
    T* pd = ptr<T>(dlogits, op, "dlogits", true);
    const T* pp = ptr<T>(probs, op, "probs");
    py::gil_scoped_release nogil;
    deepnum::softmax_nll_backward<T>(pd, pp, plab, N, n_classes);
  });
}

// ---- elementwise -------------------------------------------------------------------------

void expect_same_shape(const py::array& a, const py::array& ref, const char* op, const char* name,
                       const char* ref_name) {
  bool ok = a.ndim() == ref.ndim();
  for (py::ssize_t i = 0; ok && i < a.ndim(); ++i) ok = a.shape(i) == ref.shape(i);
  if (!ok) value_error(op, std::string(name) + " has shape " + shape_str(a) + " but " + ref_name + " has " + shape_str(ref));
}

void check_activation(int act, double alpha, const char* op) {
  if (act < deepnum::kLinear || act > deepnum::kLeakyRelu) value_error(op, "unknown activation code " + std::to_string(act));
  if (!(alpha >= 0.0)) value_error(op, "alpha must be >= 0");
}

void activation_forward(py::array y, py::array x, int act, double alpha) {
  const char* op = "activation_forward";
  check_activation(act, alpha, op);
  expect_same_shape(y, x, op, "y", "x");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y", true);
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    deepnum::activation_forward<T>(py_, px, act, alpha, static_cast<i64>(x.size()));
  });
}

void activation_backward(py::array dx, py::array y, py::array dy, int act, double alpha) {
  const char* op = "activation_backward";
  check_activation(act, alpha, op);
  expect_same_shape(dy, y, op, "dy", "y");
  expect_same_shape(dx, y, op, "dx", "y");
  by_dtype(op, y, [&](auto t) {
    using T = decltype(t);
    T* pdx = ptr<T>(dx, op, "dx", true);
    const T *py_ = ptr<T>(y, op, "y"), *pdy = ptr<T>(dy, op, "dy");
    py::gil_scoped_release nogil;
    deepnum::activation_backward<T>(pdx, py_, pdy, act, alpha, static_cast<i64>(y.size()));
  });
}

void dropout_forward(py::array y, py::array mask, py::array x, double p, std::uint64_t seed) {
  const char* op = "dropout_forward";
  if (!(p >= 0.0 && p < 1.0)) value_error(op, "p must be in [0, 1), got " + std::to_string(p));
  expect_same_shape(y, x, op, "y", "x");
  expect_same_shape(mask, x, op, "mask", "x");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T *py_ = ptr<T>(y, op, "y", true), *pm = ptr<T>(mask, op, "mask", true);
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    deepnum::dropout_forward<T>(py_, pm, px, p, seed, static_cast<i64>(x.size()));
  });
}

void dropout_backward(py::array dx, py::array dy, py::array mask) {
  const char* op = "dropout_backward";
  expect_same_shape(dy, mask, op, "dy", "mask");
  expect_same_shape(dx, mask, op, "dx", "mask");
  by_dtype(op, dy, [&](auto t) {
    using T = decltype(t);
    T* pdx = ptr<T>(dx, op, "dx", true);
    const T *pdy = ptr<T>(dy, op, "dy"), *pm = ptr<T>(mask, op, "mask");
    py::gil_scoped_release nogil;
    deepnum::dropout_backward<T>(pdx, pdy, pm, static_cast<i64>(dy.size()));
  });
}

void sgd_update(py::array param, py::array velocity, py::array grad, double lr, double momentum, bool nesterov,
                double weight_decay) {
  const char* op = "sgd_update";
  expect_same_shape(grad, param, op, "grad", "param");
  if (velocity.size() != 0) expect_same_shape(velocity, param, op, "velocity", "param");
  by_dtype(op, param, [&](auto t) {
    using T = decltype(t);
    T* pp = ptr<T>(param, op, "param", true);
    T* pv = optional_ptr<T>(velocity, op, "velocity");
    const T* pg = ptr<T>(grad, op, "grad");
    py::gil_scoped_release nogil;
    deepnum::sgd_update<T>(pp, pv, pg, lr, momentum, nesterov, weight_decay, static_cast<i64>(param.size()));
  });
}

void adam_update(py::array param, py::array m, py::array v, py::array grad, double lr, double beta1, double beta2,
                 double eps, double weight_decay, i64 step) {
  const char* op = "adam_update";
  expect_positive(step, op, "step");
  expect_same_shape(grad, param, op, "grad", "param");
  expect_same_shape(m, param, op, "m", "param");
  expect_same_shape(v, param, op, "v", "param");
  by_dtype(op, param, [&](auto t) {
    using T = decltype(t);
    T *pp = ptr<T>(param, op, "param", true), *pm = ptr<T>(m, op, "m", true), *pv = ptr<T>(v, op, "v", true);
    const T* pg = ptr<T>(grad, op, "grad");
    py::gil_scoped_release nogil;
    deepnum::adam_update<T>(pp, pm, pv, pg, lr, beta1, beta2, eps, weight_decay, step, static_cast<i64>(param.size()));
  });
}

// ---- recurrent network --------------------------------------------------------------------

struct RnnShape {
  i64 steps, N, D, H;
};

RnnShape rnn_shape(const py::array& x, const py::array& h0, const py::array& w_xh, const py::array& w_hh, int act,
                   const char* op) {
  if (act != deepnum::kLinear && act != deepnum::kSigmoid && act != deepnum::kTanh && act != deepnum::kRelu)
    value_error(op, "activation code " + std::to_string(act) +
                        " is not supported (linear 0, sigmoid 1, tanh 2, relu 3)");
  expect_ndim(x, 3, op, "x");
  expect_ndim(w_xh, 2, op, "w_xh");
  const RnnShape s{x.shape(0), x.shape(1), x.shape(2), w_xh.shape(1)};
  expect_shape(w_xh, {s.D, s.H}, op, "w_xh");
  expect_shape(w_hh, {s.H, s.H}, op, "w_hh");
  expect_shape(h0, {s.N, s.H}, op, "h0");
  return s;
}

void rnn_forward(py::array h_all, py::array x, py::array h0, py::array w_xh, py::array w_hh, py::array b_h, int act) {
  const char* op = "rnn_forward";
  const RnnShape s = rnn_shape(x, h0, w_xh, w_hh, act, op);
  expect_shape(b_h, {s.H}, op, "b_h");
  expect_shape(h_all, {s.steps, s.N, s.H}, op, "h_all");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T* ph = ptr<T>(h_all, op, "h_all", true);
    const T *px = ptr<T>(x, op, "x"), *ph0 = ptr<T>(h0, op, "h0"), *pwx = ptr<T>(w_xh, op, "w_xh"),
            *pwh = ptr<T>(w_hh, op, "w_hh"), *pb = ptr<T>(b_h, op, "b_h");
    py::gil_scoped_release nogil;
    deepnum::rnn_forward<T>(ph, px, ph0, pwx, pwh, pb, s.steps, s.N, s.D, s.H, act);
  });
}

void rnn_backward(py::array dx, py::array dh0, py::array dw_xh, py::array dw_hh, py::array db_h, py::array h_all,
                  py::array dh_all, py::array x, py::array h0, py::array w_xh, py::array w_hh, int act,
                  i64 bptt_steps, double clip) {
  const char* op = "rnn_backward";
  const RnnShape s = rnn_shape(x, h0, w_xh, w_hh, act, op);
  if (bptt_steps < 0) value_error(op, "bptt_steps must be >= 0, got " + std::to_string(bptt_steps));
  if (!(clip >= 0.0) || std::isinf(clip)) value_error(op, "clip must be finite and >= 0, got " + std::to_string(clip));
  expect_shape(h_all, {s.steps, s.N, s.H}, op, "h_all");
  expect_shape(dh_all, {s.steps, s.N, s.H}, op, "dh_all");
  expect_shape(dx, {s.steps, s.N, s.D}, op, "dx");
  expect_shape(dh0, {s.N, s.H}, op, "dh0");
  expect_shape(dw_xh, {s.D, s.H}, op, "dw_xh");
  expect_shape(dw_hh, {s.H, s.H}, op, "dw_hh");
  expect_shape(db_h, {s.H}, op, "db_h");
  by_dtype(op, x, [&](auto t) {
    using T = decltype(t);
    T *pdx = ptr<T>(dx, op, "dx", true), *pdh0 = ptr<T>(dh0, op, "dh0", true),
      *pdwx = ptr<T>(dw_xh, op, "dw_xh", true), *pdwh = ptr<T>(dw_hh, op, "dw_hh", true),
      *pdb = ptr<T>(db_h, op, "db_h", true);
    const T *ph = ptr<T>(h_all, op, "h_all"), *pdh = ptr<T>(dh_all, op, "dh_all"), *px = ptr<T>(x, op, "x"),
            *ph0 = ptr<T>(h0, op, "h0"), *pwx = ptr<T>(w_xh, op, "w_xh"), *pwh = ptr<T>(w_hh, op, "w_hh");
    py::gil_scoped_release nogil;
    deepnum::rnn_backward<T>(pdx, pdh0, pdwx, pdwh, pdb, ph, pdh, px, ph0, pwx, pwh, s.steps, s.N, s.D, s.H, act,
                             bptt_steps, clip);
  });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "deepnum C++ CPU kernels (OpenMP threads, run-time SIMD dispatch). Use deepnum.ops, not this module.";
  using py::arg;
  m.def("gemm", &gemm, arg("c"), arg("a"), arg("b"), arg("trans_a"), arg("trans_b"));
  m.def("linear_forward", &linear_forward, arg("y"), arg("x"), arg("w"), arg("b"));
  m.def("linear_backward", &linear_backward, arg("dx"), arg("dw"), arg("db"), arg("dy"), arg("x"), arg("w"));
  m.def("mlp_train_step", &mlp_train_step, arg("ws"), arg("bs"), arg("acts"), arg("x"), arg("labels"), arg("lr"),
        arg("weight_decay"), arg("alpha"));
  m.def("conv2d_forward", &conv2d_forward, arg("y"), arg("x"), arg("w"), arg("b"), arg("stride_h"), arg("stride_w"),
        arg("pad_h"), arg("pad_w"));
  m.def("conv2d_backward", &conv2d_backward, arg("dx"), arg("dw"), arg("db"), arg("dy"), arg("x"), arg("w"),
        arg("stride_h"), arg("stride_w"), arg("pad_h"), arg("pad_w"));
  m.def("max_pool2d_forward", &max_pool2d_forward, arg("y"), arg("argmax"), arg("x"), arg("size_h"), arg("size_w"),
        arg("stride_h"), arg("stride_w"));
  m.def("max_pool2d_backward", &max_pool2d_backward, arg("dx"), arg("dy"), arg("argmax"));
  m.def("softmax_nll_forward", &softmax_nll_forward, arg("probs"), arg("logits"), arg("labels"));
  m.def("softmax_nll_backward", &softmax_nll_backward, arg("dlogits"), arg("probs"), arg("labels"));
  m.def("activation_forward", &activation_forward, arg("y"), arg("x"), arg("act"), arg("alpha"));
  m.def("activation_backward", &activation_backward, arg("dx"), arg("y"), arg("dy"), arg("act"), arg("alpha"));
  m.def("dropout_forward", &dropout_forward, arg("y"), arg("mask"), arg("x"), arg("p"), arg("seed"));
  m.def("dropout_backward", &dropout_backward, arg("dx"), arg("dy"), arg("mask"));
  m.def("sgd_update", &sgd_update, arg("param"), arg("velocity"), arg("grad"), arg("lr"), arg("momentum"),
        arg("nesterov"), arg("weight_decay"));
  m.def("adam_update", &adam_update, arg("param"), arg("m"), arg("v"), arg("grad"), arg("lr"), arg("beta1"),
        arg("beta2"), arg("eps"), arg("weight_decay"), arg("step"));
  m.def("rnn_forward", &rnn_forward, arg("h_all"), arg("x"), arg("h0"), arg("w_xh"), arg("w_hh"), arg("b_h"),
        arg("act"));
  m.def("rnn_backward", &rnn_backward, arg("dx"), arg("dh0"), arg("dw_xh"), arg("dw_hh"), arg("db_h"), arg("h_all"),
        arg("dh_all"), arg("x"), arg("h0"), arg("w_xh"), arg("w_hh"), arg("act"), arg("bptt_steps"), arg("clip"));
  m.def("set_num_threads", &deepnum::set_num_threads, arg("n"), "Set the number of OpenMP threads used by kernels.");
  m.def("get_num_threads", &deepnum::get_num_threads, "Number of OpenMP threads kernels use.");
  m.def("simd_level", &deepnum::simd_level, "SIMD instruction set the run-time dispatch picks on this CPU.");
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
