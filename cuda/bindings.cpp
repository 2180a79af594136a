// pybind11 bindings of the CUDA kernels (deepnum._cuda), compiled by the host compiler.
//
// DeviceArray: a C-contiguous n-d array in device memory, owning a Buffer (cudaMalloc / RAII cudaFree, shared
// by copies of the handle), with shape, numpy dtype, from_numpy / to_numpy and __cuda_array_interface__.
// The kernels have the names and signatures shared by every backend (outputs first; sizes read off the arrays)
// and take DeviceArrays only: nothing is copied between host and device here except the scalars the ops
// return (softmax loss) and the range flags of labels / argmax. Arguments are checked as in cpp/bindings.cpp:
// a wrong dtype is a TypeError, a wrong shape a ValueError, each naming the op. CUDA errors are RuntimeErrors.
// `_host_*`: the per-element functions of elementwise.h run on the CPU, so the tests can check the
// device arithmetic against deepnum._reference without a GPU.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "elementwise.h"
#include "kernels.h"

namespace py = pybind11;
namespace dc = deepnum::cuda;
namespace ew = deepnum::ew;
using dc::i64;

namespace {

std::string shape_str(const std::vector<i64>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

[[noreturn]] void value_error(const char* op, const std::string& msg) {
  throw std::invalid_argument(std::string(op) + ": " + msg);
}

// ---- DeviceArray -------------------------------------------------------------------------

struct DeviceArray {
  std::shared_ptr<dc::Buffer> buf;
  std::vector<i64> shape;
  py::dtype dtype;

  DeviceArray(std::vector<i64> shape_, py::dtype dtype_) : shape(std::move(shape_)), dtype(std::move(dtype_)) {
    const char kind = dtype.kind();
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b' && kind != 'c')
      throw py::type_error("DeviceArray: dtype must be numeric or bool, got " + py::str(dtype).cast<std::string>());
    for (i64 s : shape)
      if (s < 0) throw std::invalid_argument("DeviceArray: negative dimension in shape " + shape_str(shape));
    buf = std::make_shared<dc::Buffer>(nbytes());
  }
  i64 size() const {
    i64 n = 1;
    for (i64 s : shape) n *= s;
    return n;
  }
  std::size_t nbytes() const { return static_cast<std::size_t>(size()) * dtype.itemsize(); }
  std::string dtype_name() const { return py::str(dtype).cast<std::string>(); }
  py::tuple shape_tuple() const {
    py::tuple t(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) t[i] = shape[i];
    return t;
  }
  py::array to_numpy() const {
    py::array out(dtype, std::vector<py::ssize_t>(shape.begin(), shape.end()));
    dc::copy_to_host(out.mutable_data(), buf->data(), nbytes());
    return out;
  }
  static DeviceArray from_numpy(const py::handle& obj) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error("DeviceArray.from_numpy: expected a numpy.ndarray, got " +
                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    const auto a = py::array::ensure(obj, py::array::c_style);  // a C-ordered copy when needed
    DeviceArray d(std::vector<i64>(a.shape(), a.shape() + a.ndim()), a.dtype());
    dc::copy_to_device(d.buf->data(), a.data(), d.nbytes());
    return d;
  }
  DeviceArray copy() const {
    DeviceArray d(shape, dtype);
    dc::copy_on_device(d.buf->data(), buf->data(), nbytes());
    return d;
  }
  template <class T>
  T* data() const { return buf->as<T>(); }
};

std::vector<i64> shape_arg(const py::handle& s) {
  if (py::isinstance<py::int_>(s)) return {s.cast<i64>()};
  return s.cast<std::vector<i64>>();
}

// ---- argument checks (as in cpp/bindings.cpp) ---------------------------------------------

template <class T>
T* ptr(const DeviceArray& a, const char* op, const char* name) {
  if (!a.dtype.equal(py::dtype::of<T>()))
    throw py::type_error(std::string(op) + ": " + name + " has dtype " + a.dtype_name() + ", expected " +
                         py::str(py::dtype::of<T>()).cast<std::string>());
  return a.data<T>();
}

void expect_shape(const DeviceArray& a, const std::vector<i64>& shape, const char* op, const char* name) {
  if (a.shape != shape) value_error(op, std::string(name) + " has shape " + shape_str(a.shape) + ", expected " + shape_str(shape));
}

void expect_ndim(const DeviceArray& a, size_t ndim, const char* op, const char* name) {
  if (a.shape.size() != ndim || a.size() == 0)
    value_error(op, std::string(name) + " must be a non-empty " + std::to_string(ndim) + "-D array, got shape " +
                        shape_str(a.shape));
}

void expect_positive(i64 v, const char* op, const char* name) {
  if (v <= 0) value_error(op, std::string(name) + " must be positive, got " + std::to_string(v));
}

template <class F>
auto by_dtype(const char* op, const py::dtype& dt, F&& f) {
  if (dt.equal(py::dtype::of<float>())) return f(float{});
  if (dt.equal(py::dtype::of<double>())) return f(double{});
  throw py::type_error(std::string(op) + ": expected float32 or float64, got " + py::str(dt).cast<std::string>());
}

i64 conv_out(i64 in, i64 k, i64 stride, i64 pad, const char* op) {
  if (in + 2 * pad < k)
    value_error(op, "kernel size " + std::to_string(k) + " exceeds padded input size " + std::to_string(in + 2 * pad));
  return (in + 2 * pad - k) / stride + 1;
}

void check_activation(int act, double alpha, const char* op, int last = ew::kLeakyRelu) {
  if (act < ew::kLinear || act > last) value_error(op, "activation code " + std::to_string(act) + " is not supported");
  if (!(alpha >= 0.0)) value_error(op, "alpha must be >= 0");
}

using DA = const DeviceArray&;

// ---- kernels -----------------------------------------------------------------------------

void gemm(DA c, DA a, DA b, bool trans_a, bool trans_b) {
  const char* op = "gemm";
  expect_ndim(a, 2, op, "a");
  expect_ndim(b, 2, op, "b");
  const i64 M = trans_a ? a.shape[1] : a.shape[0], K = trans_a ? a.shape[0] : a.shape[1];
  const i64 Kb = trans_b ? b.shape[1] : b.shape[0], N = trans_b ? b.shape[0] : b.shape[1];
  if (K != Kb) value_error(op, "inner dimensions differ: " + std::to_string(K) + " vs " + std::to_string(Kb));
  expect_shape(c, {M, N}, op, "c");
  by_dtype(op, a.dtype, [&](auto t) {
    using T = decltype(t);
    T* pc = ptr<T>(c, op, "c");
    const T *pa = ptr<T>(a, op, "a"), *pb = ptr<T>(b, op, "b");
    py::gil_scoped_release nogil;
    dc::gemm<T>(pc, pa, pb, trans_a, trans_b, M, N, K);
  });
}

void linear_forward(DA y, DA x, DA w, DA b) {
  const char* op = "linear_forward";
  expect_ndim(x, 2, op, "x");
  expect_ndim(w, 2, op, "w");
  const i64 N = x.shape[0], n_in = x.shape[1], n_out = w.shape[1];
  expect_shape(w, {n_in, n_out}, op, "w");
  expect_shape(b, {n_out}, op, "b");
  expect_shape(y, {N, n_out}, op, "y");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y");
    const T *px = ptr<T>(x, op, "x"), *pw = ptr<T>(w, op, "w"), *pb = ptr<T>(b, op, "b");
    py::gil_scoped_release nogil;
    dc::linear_forward<T>(py_, px, pw, pb, N, n_in, n_out);
  });
}

void linear_backward(DA dx, DA dw, DA db, DA dy, DA x, DA w) {
  const char* op = "linear_backward";
  expect_ndim(x, 2, op, "x");
  expect_ndim(w, 2, op, "w");
  const i64 N = x.shape[0], n_in = x.shape[1], n_out = w.shape[1];
  expect_shape(w, {n_in, n_out}, op, "w");
  expect_shape(dy, {N, n_out}, op, "dy");
  if (dx.size() != 0) expect_shape(dx, {N, n_in}, op, "dx");  // size 0: dx not wanted
  expect_shape(dw, {n_in, n_out}, op, "dw");
  expect_shape(db, {n_out}, op, "db");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T *pdx = dx.size() ? ptr<T>(dx, op, "dx") : nullptr, *pdw = ptr<T>(dw, op, "dw"), *pdb = ptr<T>(db, op, "db");
    const T *pdy = ptr<T>(dy, op, "dy"), *px = ptr<T>(x, op, "x"), *pw = ptr<T>(w, op, "w");
    py::gil_scoped_release nogil;
    dc::linear_backward<T>(pdx, pdw, pdb, pdy, px, pw, N, n_in, n_out);
  });
}

struct ConvShape {
  i64 N, C, H, W, K, R, S, P, Q;
};

ConvShape conv_shape(DA x, DA w, i64 sh, i64 sw, i64 ph, i64 pw, const char* op) {
  expect_ndim(x, 4, op, "x");
  expect_ndim(w, 4, op, "w");
  expect_positive(sh, op, "stride_h");
  expect_positive(sw, op, "stride_w");
  if (ph < 0 || pw < 0) value_error(op, "padding must be >= 0");
  if (w.shape[1] != x.shape[1]) value_error(op, "x and w have different channel counts");
  ConvShape s{x.shape[0], x.shape[1], x.shape[2], x.shape[3], w.shape[0], w.shape[2], w.shape[3], 0, 0};
  s.P = conv_out(s.H, s.R, sh, ph, op);
  s.Q = conv_out(s.W, s.S, sw, pw, op);
  return s;
}

void conv2d_forward(DA y, DA x, DA w, DA b, i64 sh, i64 sw, i64 ph, i64 pw) {
  const char* op = "conv2d_forward";
  const ConvShape s = conv_shape(x, w, sh, sw, ph, pw, op);
  expect_shape(b, {s.K}, op, "b");
  expect_shape(y, {s.N, s.K, s.P, s.Q}, op, "y");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y");
    const T *px = ptr<T>(x, op, "x"), *pw_ = ptr<T>(w, op, "w"), *pb = ptr<T>(b, op, "b");
    py::gil_scoped_release nogil;
    dc::conv2d_forward<T>(py_, px, pw_, pb, s.N, s.C, s.H, s.W, s.K, s.R, s.S, sh, sw, ph, pw);
  });
}

void conv2d_backward(DA dx, DA dw, DA db, DA dy, DA x, DA w, i64 sh, i64 sw, i64 ph, i64 pw) {
  const char* op = "conv2d_backward";
  const ConvShape s = conv_shape(x, w, sh, sw, ph, pw, op);
  expect_shape(dy, {s.N, s.K, s.P, s.Q}, op, "dy");
  if (dx.size() != 0) expect_shape(dx, x.shape, op, "dx");  // size 0: dx not wanted
  expect_shape(dw, w.shape, op, "dw");
  expect_shape(db, {s.K}, op, "db");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T *pdx = dx.size() ? ptr<T>(dx, op, "dx") : nullptr, *pdw = ptr<T>(dw, op, "dw"), *pdb = ptr<T>(db, op, "db");
    const T *pdy = ptr<T>(dy, op, "dy"), *px = ptr<T>(x, op, "x"), *pw_ = ptr<T>(w, op, "w");
    py::gil_scoped_release nogil;
    dc::conv2d_backward<T>(pdx, pdw, pdb, pdy, px, pw_, s.N, s.C, s.H, s.W, s.K, s.R, s.S, sh, sw, ph, pw);
  });
}

void max_pool2d_forward(DA y, DA argmax, DA x, i64 size_h, i64 size_w, i64 sh, i64 sw) {
  const char* op = "max_pool2d_forward";
  expect_ndim(x, 4, op, "x");
  for (auto [v, name] : {std::pair{size_h, "size_h"}, {size_w, "size_w"}, {sh, "stride_h"}, {sw, "stride_w"}})
    expect_positive(v, op, name);
  const i64 N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const i64 P = conv_out(H, size_h, sh, 0, op), Q = conv_out(W, size_w, sw, 0, op);
  expect_shape(y, {N, C, P, Q}, op, "y");
  expect_shape(argmax, {N, C, P, Q}, op, "argmax");
  i64* pidx = ptr<i64>(argmax, op, "argmax");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y");
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    dc::max_pool2d_forward<T>(py_, pidx, px, N, C, H, W, size_h, size_w, sh, sw);
  });
}

void max_pool2d_backward(DA dx, DA dy, DA argmax) {
  const char* op = "max_pool2d_backward";
  expect_ndim(dx, 4, op, "dx");
  expect_ndim(dy, 4, op, "dy");
  const i64 N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3], P = dy.shape[2], Q = dy.shape[3];
  expect_shape(dy, {N, C, P, Q}, op, "dy");
  expect_shape(argmax, {N, C, P, Q}, op, "argmax");
  const i64* pidx = ptr<i64>(argmax, op, "argmax");
  by_dtype(op, dx.dtype, [&](auto t) {
    using T = decltype(t);
    T* pdx = ptr<T>(dx, op, "dx");
    const T* pdy = ptr<T>(dy, op, "dy");
    py::gil_scoped_release nogil;
    dc::max_pool2d_backward<T>(pdx, pdy, pidx, N, C, H, W, P, Q);
  });
}

double softmax_nll_forward(DA probs, DA logits, DA labels) {
  const char* op = "softmax_nll_forward";
  expect_ndim(logits, 2, op, "logits");
  const i64 N = logits.shape[0], n_classes = logits.shape[1];
  expect_shape(labels, {N}, op, "labels");
  expect_shape(probs, {N, n_classes}, op, "probs");
  const i64* plab = ptr<i64>(labels, op, "labels");
  return by_dtype(op, logits.dtype, [&](auto t) {
    using T = decltype(t);
    T* pp = ptr<T>(probs, op, "probs");
    const T* pl = ptr<T>(logits, op, "logits");
    py::gil_scoped_release nogil;
    return dc::softmax_nll_forward<T>(pp, pl, plab, N, n_classes);
  });
}

void softmax_nll_backward(DA dlogits, DA probs, DA labels) {
  const char* op = "softmax_nll_backward";
  expect_ndim(probs, 2, op, "probs");
  const i64 N = probs.shape[0], n_classes = probs.shape[1];
  expect_shape(labels, {N}, op, "labels");
  expect_shape(dlogits, {N, n_classes}, op, "dlogits");
  const i64* plab = ptr<i64>(labels, op, "labels");
  by_dtype(op, probs.dtype, [&](auto t) {
    using T = decltype(t);
    T* pd = ptr<T>(dlogits, op, "dlogits");
    const T* pp = ptr<T>(probs, op, "probs");
    py::gil_scoped_release nogil;
    dc::softmax_nll_backward<T>(pd, pp, plab, N, n_classes);
  });
}

void activation_forward(DA y, DA x, int act, double alpha) {
  const char* op = "activation_forward";
  check_activation(act, alpha, op);
  expect_shape(y, x.shape, op, "y");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T* py_ = ptr<T>(y, op, "y");
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    dc::activation_forward<T>(py_, px, act, alpha, x.size());
  });
}

void activation_backward(DA dx, DA y, DA dy, int act, double alpha) {
  const char* op = "activation_backward";
  check_activation(act, alpha, op);
  expect_shape(dy, y.shape, op, "dy");
  expect_shape(dx, y.shape, op, "dx");
  by_dtype(op, y.dtype, [&](auto t) {
    using T = decltype(t);
    T* pdx = ptr<T>(dx, op, "dx");
    const T *py_ = ptr<T>(y, op, "y"), *pdy = ptr<T>(dy, op, "dy");
    py::gil_scoped_release nogil;
    dc::activation_backward<T>(pdx, py_, pdy, act, alpha, y.size());
  });
}

void dropout_forward(DA y, DA mask, DA x, double p, std::uint64_t seed) {
  const char* op = "dropout_forward";
  if (!(p >= 0.0 && p < 1.0)) value_error(op, "p must be in [0, 1), got " + std::to_string(p));
  expect_shape(y, x.shape, op, "y");
  expect_shape(mask, x.shape, op, "mask");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T *py_ = ptr<T>(y, op, "y"), *pm = ptr<T>(mask, op, "mask");
    const T* px = ptr<T>(x, op, "x");
    py::gil_scoped_release nogil;
    dc::dropout_forward<T>(py_, pm, px, p, seed, x.size());
  });
}

void dropout_backward(DA dx, DA dy, DA mask) {
  const char* op = "dropout_backward";
  expect_shape(dy, mask.shape, op, "dy");
  expect_shape(dx, mask.shape, op, "dx");
  by_dtype(op, dy.dtype, [&](auto t) {
    using T = decltype(t);
    T* pdx = ptr<T>(dx, op, "dx");
    const T *pdy = ptr<T>(dy, op, "dy"), *pm = ptr<T>(mask, op, "mask");
    py::gil_scoped_release nogil;
    dc::dropout_backward<T>(pdx, pdy, pm, dy.size());
  });
}

void sgd_update(DA param, DA velocity, DA grad, double lr, double momentum, bool nesterov, double weight_decay) {
  const char* op = "sgd_update";
  expect_shape(grad, param.shape, op, "grad");
  if (velocity.size() != 0) expect_shape(velocity, param.shape, op, "velocity");
  by_dtype(op, param.dtype, [&](auto t) {
    using T = decltype(t);
    T* pp = ptr<T>(param, op, "param");
    T* pv = velocity.size() ? ptr<T>(velocity, op, "velocity") : nullptr;
    const T* pg = ptr<T>(grad, op, "grad");
    py::gil_scoped_release nogil;
    dc::sgd_update<T>(pp, pv, pg, lr, momentum, nesterov, weight_decay, param.size());
  });
}

void adam_update(DA param, DA m, DA v, DA grad, double lr, double beta1, double beta2, double eps,
                 double weight_decay, i64 step) {
  const char* op = "adam_update";
  expect_positive(step, op, "step");
  expect_shape(grad, param.shape, op, "grad");
  expect_shape(m, param.shape, op, "m");
  expect_shape(v, param.shape, op, "v");
  by_dtype(op, param.dtype, [&](auto t) {
    using T = decltype(t);
    T *pp = ptr<T>(param, op, "param"), *pm = ptr<T>(m, op, "m"), *pv = ptr<T>(v, op, "v");
    const T* pg = ptr<T>(grad, op, "grad");
    py::gil_scoped_release nogil;
    dc::adam_update<T>(pp, pm, pv, pg, lr, beta1, beta2, eps, weight_decay, step, param.size());
  });
}

struct RnnShape {
  i64 steps, N, D, H;
};

RnnShape rnn_shape(DA x, DA h0, DA w_xh, DA w_hh, int act, const char* op) {
  check_activation(act, 0.0, op, ew::kRelu);
  expect_ndim(x, 3, op, "x");
  expect_ndim(w_xh, 2, op, "w_xh");
  const RnnShape s{x.shape[0], x.shape[1], x.shape[2], w_xh.shape[1]};
  expect_shape(w_xh, {s.D, s.H}, op, "w_xh");
  expect_shape(w_hh, {s.H, s.H}, op, "w_hh");
  expect_shape(h0, {s.N, s.H}, op, "h0");
  return s;
}

void rnn_forward(DA h_all, DA x, DA h0, DA w_xh, DA w_hh, DA b_h, int act) {
  const char* op = "rnn_forward";
  const RnnShape s = rnn_shape(x, h0, w_xh, w_hh, act, op);
  expect_shape(b_h, {s.H}, op, "b_h");
  expect_shape(h_all, {s.steps, s.N, s.H}, op, "h_all");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T* ph = ptr<T>(h_all, op, "h_all");
    const T *px = ptr<T>(x, op, "x"), *ph0 = ptr<T>(h0, op, "h0"), *pwx = ptr<T>(w_xh, op, "w_xh"),
            *pwh = ptr<T>(w_hh, op, "w_hh"), *pb = ptr<T>(b_h, op, "b_h");
    py::gil_scoped_release nogil;
    dc::rnn_forward<T>(ph, px, ph0, pwx, pwh, pb, s.steps, s.N, s.D, s.H, act);
  });
}

void rnn_backward(DA dx, DA dh0, DA dw_xh, DA dw_hh, DA db_h, DA h_all, DA dh_all, DA x, DA h0, DA w_xh, DA w_hh,
                  int act, i64 bptt_steps, double clip) {
  const char* op = "rnn_backward";
  const RnnShape s = rnn_shape(x, h0, w_xh, w_hh, act, op);
  if (bptt_steps < 0) value_error(op, "bptt_steps must be >= 0, got " + std::to_string(bptt_steps));
  if (!(clip >= 0.0) || std::isinf(clip)) value_error(op, "clip must be finite and >= 0, got " + std::to_string(clip));
  expect_shape(h_all, {s.steps, s.N, s.H}, op, "h_all");
  expect_shape(dh_all, {s.steps, s.N, s.H}, op, "dh_all");
  expect_shape(dx, x.shape, op, "dx");
  expect_shape(dh0, h0.shape, op, "dh0");
  expect_shape(dw_xh, w_xh.shape, op, "dw_xh");
  expect_shape(dw_hh, w_hh.shape, op, "dw_hh");
  expect_shape(db_h, {s.H}, op, "db_h");
  by_dtype(op, x.dtype, [&](auto t) {
    using T = decltype(t);
    T *pdx = ptr<T>(dx, op, "dx"), *pdh0 = ptr<T>(dh0, op, "dh0"), *pdwx = ptr<T>(dw_xh, op, "dw_xh"),
      *pdwh = ptr<T>(dw_hh, op, "dw_hh"), *pdb = ptr<T>(db_h, op, "db_h");
    const T *ph = ptr<T>(h_all, op, "h_all"), *pdh = ptr<T>(dh_all, op, "dh_all"), *px = ptr<T>(x, op, "x"),
            *ph0 = ptr<T>(h0, op, "h0"), *pwx = ptr<T>(w_xh, op, "w_xh"), *pwh = ptr<T>(w_hh, op, "w_hh");
    py::gil_scoped_release nogil;
    dc::rnn_backward<T>(pdx, pdh0, pdwx, pdwh, pdb, ph, pdh, px, ph0, pwx, pwh, s.steps, s.N, s.D, s.H, act,
                        bptt_steps, clip);
  });
}

// ---- host copies of the elementwise functions (tested on the CPU) -----------------------

// Calls f(T{}, a) with a C-contiguous float32/float64 copy-or-view of obj.
template <class F>
auto host_float(const char* op, const py::array& obj, F&& f) {
  return by_dtype(op, obj.dtype(), [&](auto t) {
    using T = decltype(t);
    return f(t, py::array_t<T, py::array::c_style>::ensure(obj));
  });
}

py::array host_activation_forward(const py::array& x, int act, double alpha) {
  return host_float("_host_activation_forward", x, [&](auto t, auto a) -> py::array {
    using T = decltype(t);
    py::array_t<T> y(a.request().shape);
    for (py::ssize_t i = 0; i < a.size(); ++i)
      y.mutable_data()[i] = ew::activation_forward<T>(a.data()[i], act, static_cast<T>(alpha));
    return y;
  });
}

py::array host_activation_backward(const py::array& y, const py::array& dy, int act, double alpha) {
  return host_float("_host_activation_backward", y, [&](auto t, auto a) -> py::array {
    using T = decltype(t);
    const auto g = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(dy);
    if (g.size() != a.size()) throw std::invalid_argument("_host_activation_backward: y and dy differ in size");
    py::array_t<T> dx(a.request().shape);
    for (py::ssize_t i = 0; i < a.size(); ++i)
      dx.mutable_data()[i] = ew::activation_backward<T>(a.data()[i], g.data()[i], act, static_cast<T>(alpha));
    return dx;
  });
}

py::array host_dropout_uniform(std::uint64_t seed, i64 n) {
  py::array_t<double> u(n);
  for (i64 i = 0; i < n; ++i) u.mutable_data()[i] = ew::dropout_uniform(seed, i);
  return u;
}

py::array host_dropout_mask(const py::array& x, double p, std::uint64_t seed) {
  return host_float("_host_dropout_mask", x, [&](auto t, auto a) -> py::array {
    using T = decltype(t);
    py::array_t<T> mask(a.request().shape);
    const T scale = static_cast<T>(1.0 / (1.0 - p));
    for (py::ssize_t i = 0; i < a.size(); ++i) mask.mutable_data()[i] = ew::dropout_mask<T>(seed, i, p, scale);
    return mask;
  });
}

// In place on C-contiguous writable numpy arrays; velocity may be None.
void host_sgd_update(py::array param, py::object velocity, const py::array& grad, double lr, double momentum,
                     bool nesterov, double wd) {
  host_float("_host_sgd_update", param, [&](auto t, auto p) {
    using T = decltype(t);
    using A = py::array_t<T, py::array::c_style>;
    if (!p.is(param)) throw py::type_error("_host_sgd_update: param must be a C-contiguous float array");
    if (!velocity.is_none() && !A::check_(velocity))
      throw py::type_error("_host_sgd_update: velocity must be None or a C-contiguous array of param's dtype");
    const auto g = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(grad);
    T* v = velocity.is_none() ? nullptr : A(velocity).mutable_data();
    if (g.size() != p.size() || (v && A(velocity).size() != p.size()))
      throw py::value_error("_host_sgd_update: param, grad and velocity must have the same size");
    for (py::ssize_t i = 0; i < p.size(); ++i)
      ew::sgd_step<T>(p.mutable_data()[i], v ? v + i : nullptr, g.data()[i], static_cast<T>(lr),
                      static_cast<T>(momentum), nesterov, static_cast<T>(wd));
  });
}

void host_adam_update(py::array param, py::array m, py::array v, const py::array& grad, double lr, double beta1,
                      double beta2, double eps, double wd, i64 step) {
  host_float("_host_adam_update", param, [&](auto t, auto p) {
    using T = decltype(t);
    using A = py::array_t<T, py::array::c_style>;
    if (!p.is(param) || !A::check_(m) || !A::check_(v))
      throw py::type_error("_host_adam_update: param, m, v must be C-contiguous arrays of one float dtype");
    const auto g = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(grad);
    if (g.size() != p.size() || A(m).size() != p.size() || A(v).size() != p.size())
      throw py::value_error("_host_adam_update: param, m, v and grad must have the same size");
    T *pm = A(m).mutable_data(), *pv = A(v).mutable_data();
    const T c1 = static_cast<T>(1.0 - std::pow(beta1, static_cast<double>(step)));
    const T c2 = static_cast<T>(1.0 - std::pow(beta2, static_cast<double>(step)));
    for (py::ssize_t i = 0; i < p.size(); ++i)
      ew::adam_step<T>(p.mutable_data()[i], pm[i], pv[i], g.data()[i], static_cast<T>(lr), static_cast<T>(beta1),
                       static_cast<T>(1.0 - beta1), static_cast<T>(beta2), static_cast<T>(1.0 - beta2),
                       static_cast<T>(eps), static_cast<T>(wd), c1, c2);
  });
}

// The row algorithm of softmax_nll.cu with the same pieces, serially: returns (mean loss, probs).
py::tuple host_softmax_nll_forward(const py::array& logits, const py::array_t<i64, py::array::c_style>& labels) {
  return host_float("_host_softmax_nll_forward", logits, [&](auto t, auto a) -> py::tuple {
    using T = decltype(t);
    if (a.ndim() != 2 || labels.size() != a.shape(0))
      throw std::invalid_argument("_host_softmax_nll_forward: logits (N, n) and labels (N,) expected");
    const i64 N = a.shape(0), n = a.shape(1);
    py::array_t<T> probs({N, n});
    double sum = 0.0;
    for (i64 i = 0; i < N; ++i) {
      const T* l = a.data() + i * n;
      T m = l[0], s = T(0);
      for (i64 j = 0; j < n; ++j) m = ew::max_(m, l[j]);
      for (i64 j = 0; j < n; ++j) s += ew::softmax_term(l[j], m);
      for (i64 j = 0; j < n; ++j) probs.mutable_data()[i * n + j] = ew::softmax_term(l[j], m) / s;
      sum += static_cast<double>(ew::nll(s, l[labels.data()[i]] - m));
    }
    return py::make_tuple(sum / static_cast<double>(N), probs);
  });
}

py::dict cuda_array_interface(const DeviceArray& a) {
  py::dict d;
  d["shape"] = a.shape_tuple();
  d["typestr"] = a.dtype.attr("str");
  d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(a.buf->data()), false);
  d["strides"] = py::none();
  d["version"] = 3;
  d["stream"] = 1;  // the legacy default stream, on which every kernel here runs
  return d;
}

std::string device_name(int device) {
  cudaDeviceProp prop{};
  DN_CHECK(cudaGetDeviceProperties(&prop, device));
  return std::string(prop.name) + " (compute capability " + std::to_string(prop.major) + "." +
         std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 20) + " MiB)";
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "deepnum CUDA kernels on device arrays. Use deepnum.ops with the 'cuda' backend, not this module.";
  using py::arg;

  py::class_<DeviceArray>(m, "DeviceArray", "A C-contiguous array in CUDA device memory (freed with its last handle).")
      .def_static("empty", [](const py::handle& shape, const py::object& dtype) {
            return DeviceArray(shape_arg(shape), py::dtype::from_args(dtype));
          }, arg("shape"), arg("dtype") = py::dtype::of<float>(), "Uninitialised device array.")
      .def_static("zeros", [](const py::handle& shape, const py::object& dtype) {
            DeviceArray d(shape_arg(shape), py::dtype::from_args(dtype));
            dc::fill_zero(d.buf->data(), d.nbytes());
            return d;
          }, arg("shape"), arg("dtype") = py::dtype::of<float>(), "Device array of zeros.")
      .def_static("from_numpy", &DeviceArray::from_numpy, arg("a"), "Copy a numpy array to the device (C order).")
      .def("to_numpy", &DeviceArray::to_numpy, "Copy to a new numpy array on the host.")
      .def("numpy", &DeviceArray::to_numpy, "Copy to a new numpy array on the host.")
      .def("copy", &DeviceArray::copy, "A new device array with the same contents (device-to-device copy).")
      .def_property_readonly("shape", &DeviceArray::shape_tuple)
      .def_property_readonly("dtype", [](const DeviceArray& a) { return a.dtype; })
      .def_property_readonly("size", &DeviceArray::size)
      .def_property_readonly("ndim", [](const DeviceArray& a) { return a.shape.size(); })
      .def_property_readonly("nbytes", &DeviceArray::nbytes)
      .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
      .def("__len__", [](const DeviceArray& a) {
            if (a.shape.empty()) throw py::type_error("len() of a 0-d DeviceArray");
            return a.shape[0];
          })
      .def("__repr__", [](const DeviceArray& a) {
            return "DeviceArray(shape=" + shape_str(a.shape) + ", dtype=" + a.dtype_name() + ")";
          });

  m.def("device_count", [] { return dc::device_count(nullptr); }, "CUDA devices present (0 when none or no driver).");
  m.def("device_status", [] {
        std::string reason;
        const int n = dc::device_count(&reason);
        return py::make_tuple(n, reason);
      }, "(device count, why 0) — never raises.");
  m.def("device_name", &device_name, arg("device") = 0, "Name, compute capability and memory of a device.");
  m.def("synchronize", [] {
        py::gil_scoped_release nogil;
        DN_CHECK(cudaDeviceSynchronize());
      }, "Wait for all kernels (reports asynchronous errors).");

  m.def("gemm", &gemm, arg("c"), arg("a"), arg("b"), arg("trans_a"), arg("trans_b"));
  m.def("linear_forward", &linear_forward, arg("y"), arg("x"), arg("w"), arg("b"));
  m.def("linear_backward", &linear_backward, arg("dx"), arg("dw"), arg("db"), arg("dy"), arg("x"), arg("w"));
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

  m.def("_host_activation_forward", &host_activation_forward, arg("x"), arg("act"), arg("alpha"));
  m.def("_host_activation_backward", &host_activation_backward, arg("y"), arg("dy"), arg("act"), arg("alpha"));
  m.def("_host_dropout_uniform", &host_dropout_uniform, arg("seed"), arg("n"));
  m.def("_host_dropout_mask", &host_dropout_mask, arg("x"), arg("p"), arg("seed"));
  m.def("_host_sgd_update", &host_sgd_update, arg("param"), arg("velocity"), arg("grad"), arg("lr"), arg("momentum"),
        arg("nesterov"), arg("weight_decay"));
  m.def("_host_adam_update", &host_adam_update, arg("param"), arg("m"), arg("v"), arg("grad"), arg("lr"),
        arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("step"));
  m.def("_host_softmax_nll_forward", &host_softmax_nll_forward, arg("logits"), arg("labels"));
}
