// deepnum._cuda: the ops of cpp/contract.h on DeviceArrays, running the CUDA kernels (cuda/*.cu, declared in
// cpp/kernels.h like the CPU ones), compiled by the host compiler. The argument rules, their messages and the op
// table are contract.h's (mlp_train_step is not bound here: deepnum.cuda composes it from the other ops).
//
// DeviceArray: a C-contiguous n-d array in device memory: a Buffer (stream-ordered cudaMallocAsync /
// cudaFreeAsync, memory.cpp; shared by the handles and views of one allocation) and a byte offset into it, a shape
// and a numpy dtype; from_numpy / to_numpy, copy, __cuda_array_interface__, and two views that copy nothing:
// rows(start, stop) and reshape(shape); DLPack both ways (__dlpack__, _from_dlpack: cuda/dlpack.h), sharing memory.
// _spec(shape, dtype) makes a DeviceArray that holds no memory, for testing the argument checks without a GPU:
// the checks accept it, and running a kernel on it or copying it raises RuntimeError.
// Nothing is copied between host and device by the ops except the loss they return and the range flags of
// labels / argmax. CUDA errors are RuntimeErrors.
// `_host_*`: the per-element functions of elementwise.h run on the CPU, so the tests can check the
// device arithmetic against deepnum._reference without a GPU.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../cpp/contract.h"
#ifdef DEEPNUM_CUDA_EMULATE
#include "common.cuh"  // Limits
namespace deepnum::emulate {
std::vector<int> selftest(const std::string& name, int base);  // emulate/selftest.cpp
}
#endif
#include "check.h"
#include "device.h"
#include "dlpack.h"
#include "elementwise.h"

namespace py = pybind11;
namespace dc = deepnum::cuda;
namespace ew = deepnum::ew;
using deepnum::i64;
using deepnum::contract::shape_str;

namespace {

// ---- DeviceArray -------------------------------------------------------------------------

// The byte size of a C-contiguous array of this shape and dtype. As numpy, a negative dimension, or a product of the
// nonzero dimensions and the itemsize beyond int64, is a ValueError naming `who` and the shape; so every partial
// product of the shape fits in an i64 too (size() and the kernels' index arithmetic cannot overflow).
std::size_t checked_nbytes(const char* who, const std::vector<i64>& shape, const py::dtype& dtype) {
  i64 bytes = dtype.itemsize();
  bool empty = false;
  for (i64 s : shape) {
    if (s < 0) throw std::invalid_argument(std::string(who) + ": negative dimension in shape " + shape_str(shape));
    if (s == 0)
      empty = true;
    else if (__builtin_mul_overflow(bytes, s, &bytes))
      throw std::invalid_argument(std::string(who) + ": shape " + shape_str(shape) + " of " +
                                  deepnum::contract::dtype_str(dtype) + " is too large (its byte size overflows int64)");
  }
  return empty ? 0 : static_cast<std::size_t>(bytes);
}

struct DeviceArray {
  std::shared_ptr<dc::Buffer> buf;  // nullptr: a _spec array, no memory
  std::size_t offset = 0;           // bytes from the start of buf (views)
  std::vector<i64> shape;
  py::dtype dtype;

  // who: the entry point named in the errors (DeviceArray.zeros, ...); spec: no memory (for the argument checks only)
  DeviceArray(const char* who, std::vector<i64> shape_, py::dtype dtype_, bool spec = false)
      : shape(std::move(shape_)), dtype(std::move(dtype_)) {
    const char kind = dtype.kind();
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b' && kind != 'c')
      throw py::type_error(std::string(who) + ": dtype must be numeric or bool, got " + dtype_name());
    const std::size_t bytes = checked_nbytes(who, shape, dtype);
    if (!spec) buf = std::make_shared<dc::Buffer>(bytes);
  }
  // An uninitialised array for the library's own outputs (the ops' through the adapter below).
  DeviceArray(std::vector<i64> shape_, py::dtype dtype_)
      : DeviceArray("DeviceArray.empty", std::move(shape_), std::move(dtype_)) {}
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
  // The device address of the first element; a _spec array has none (a RuntimeError, never a null pointer).
  void* ptr() const {
    if (!buf)
      throw std::runtime_error("DeviceArray: this array holds no memory (made by _spec for argument checks only)");
    return static_cast<char*>(buf->data()) + offset;
  }
  // The copies wait for the device with the GIL released; the arrays are made (and dropped) while it is held.
  py::array to_numpy() const {
    const void* src = ptr();
    py::array out(dtype, std::vector<py::ssize_t>(shape.begin(), shape.end()));
    void* dst = out.mutable_data();
    const std::size_t bytes = nbytes();
    {
      py::gil_scoped_release nogil;
      dc::copy_to_host(dst, src, bytes);
    }
    return out;
  }
  static DeviceArray from_numpy(const py::handle& obj) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error("DeviceArray.from_numpy: expected a numpy.ndarray, got " +
                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    const auto a = py::array::ensure(obj, py::array::c_style);  // a C-ordered copy when needed
    DeviceArray d("DeviceArray.from_numpy", std::vector<i64>(a.shape(), a.shape() + a.ndim()), a.dtype());
    void* dst = d.ptr();
    const void* src = a.data();
    const std::size_t bytes = d.nbytes();
    {
      py::gil_scoped_release nogil;
      dc::copy_to_device(dst, src, bytes);
    }
    return d;
  }
  DeviceArray copy() const {
    const void* src = ptr();
    DeviceArray d("DeviceArray.copy", shape, dtype);
    void* dst = d.ptr();
    const std::size_t bytes = nbytes();
    {
      py::gil_scoped_release nogil;
      dc::copy_on_device(dst, src, bytes);
    }
    return d;
  }
  // Rows [start, stop) of the first axis: a C-contiguous view of the same buffer.
  DeviceArray rows(i64 start, i64 stop) const {
    if (shape.empty()) throw std::invalid_argument("DeviceArray.rows: a 0-d array has no rows");
    if (start < 0 || stop < start || stop > shape[0])
      throw std::invalid_argument("DeviceArray.rows: need 0 <= start <= stop <= " + std::to_string(shape[0]) +
                                  ", got start=" + std::to_string(start) + ", stop=" + std::to_string(stop));
    DeviceArray v = *this;
    v.shape[0] = stop - start;
    v.offset += static_cast<std::size_t>(start) * (shape[0] ? nbytes() / static_cast<std::size_t>(shape[0]) : 0);
    return v;
  }
  // The same elements in another shape (one dimension may be -1): a view of the same buffer.
  DeviceArray reshape(std::vector<i64> to) const {
    i64 known = 1;
    int unknown = -1;
    for (size_t i = 0; i < to.size(); ++i) {
      if (to[i] == -1 && unknown < 0) {
        unknown = static_cast<int>(i);
        continue;
      }
      if (to[i] < 0 || __builtin_mul_overflow(known, to[i], &known))
        throw std::invalid_argument("DeviceArray.reshape: bad shape " + shape_str(to));
    }
    if (unknown >= 0) {
      if (known == 0 || size() % known != 0)
        throw std::invalid_argument("DeviceArray.reshape: cannot reshape size " + std::to_string(size()) +
                                    " into shape " + shape_str(to));
      to[unknown] = size() / known;
      known = size();
    }
    if (known != size())
      throw std::invalid_argument("DeviceArray.reshape: cannot reshape size " + std::to_string(size()) +
                                  " into shape " + shape_str(to));
    checked_nbytes("DeviceArray.reshape", to, dtype);  // an empty array's shape may not grow past int64 either
    DeviceArray v = *this;
    v.shape = std::move(to);
    return v;
  }
};

// A shape argument of `who`: an int or a sequence of ints (numbers.Integral, not bool). A dimension beyond int64 is
// a ValueError ("too large"), anything else but ints a TypeError, both naming who and the shape.
std::vector<i64> shape_arg(const char* who, const py::handle& s) {
  using deepnum::contract::is_int;
  using deepnum::contract::repr_str;
  const auto dim = [&](const py::handle& d) -> i64 {
    if (!is_int(d))
      throw py::type_error(std::string(who) + ": shape must be an int or a sequence of ints, got " + repr_str(s));
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(py::int_(py::reinterpret_borrow<py::object>(d)).ptr(), &overflow);
    if (overflow) throw std::invalid_argument(std::string(who) + ": shape " + repr_str(s) + " is too large");
    return v;
  };
  if (is_int(s)) return {dim(s)};
  if (py::isinstance<py::str>(s) || !py::isinstance<py::sequence>(s))
    throw py::type_error(std::string(who) + ": shape must be an int or a sequence of ints, got " + repr_str(s));
  std::vector<i64> shape;
  for (const py::handle d : py::reinterpret_borrow<py::sequence>(s)) shape.push_back(dim(d));
  return shape;
}

// The array adapter of cpp/contract.h: DeviceArrays are always C-contiguous and writable.
struct DeviceArrays {
  using Array = DeviceArray;
  static constexpr const char* kTypeName = "deepnum.cuda.DeviceArray";
  static constexpr bool kRuns = true;
  static constexpr bool kHost = false;

  static bool is_array(py::handle h) { return py::isinstance<DeviceArray>(h); }
  static Array cast(py::handle h) { return h.cast<DeviceArray>(); }
  static py::object object(const Array& a) { return py::cast(a); }
  static int ndim(const Array& a) { return static_cast<int>(a.shape.size()); }
  static i64 dim(const Array& a, int i) { return a.shape[i]; }
  static i64 size(const Array& a) { return a.size(); }
  static py::dtype dtype(const Array& a) { return a.dtype; }
  static bool c_contiguous(const Array&) { return true; }
  static bool writable(const Array&) { return true; }
  static void* data(const Array& a) { return a.ptr(); }
  static Array empty(const std::vector<i64>& shape, const py::dtype& d) { return DeviceArray(shape, d); }
  static Array zeros(const std::vector<i64>& shape, const py::dtype& d) {
    DeviceArray a("DeviceArray.zeros", shape, d);
    dc::fill_zero(a.ptr(), a.nbytes());
    return a;
  }
};

template <class F>
auto by_dtype(const char* op, const py::dtype& dt, F&& f) {
  if (dt.equal(py::dtype::of<float>())) return f(float{});
  if (dt.equal(py::dtype::of<double>())) return f(double{});
  throw py::type_error(std::string(op) + ": expected float32 or float64, got " + py::str(dt).cast<std::string>());
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
  d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(a.ptr()), false);
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

// ---- the array functions of deepnum._cudabackend.DEVICE (kernels in cuda/arrays.cu) -------------
// Plain functions on DeviceArrays, the twins of deepnum/_host.py's HostArrays: each checks its arguments (a
// TypeError or ValueError naming the function and the shapes), allocates its output and runs its kernels with the
// GIL released. Only count_unequal and sigmoid_bce copy a result back (one scalar each); take_rows copies a host
// index to the device and a 4-byte flag back.

namespace {

std::string type_name(const py::handle& h) {
  const py::handle t = py::type::of(h);
  const std::string module = py::str(t.attr("__module__")).cast<std::string>();
  const std::string name = py::str(t.attr("__name__")).cast<std::string>();
  return module == "builtins" ? name : module + "." + name;
}

DeviceArray device_arg(const char* fn, const char* name, const py::handle& h) {
  if (!py::isinstance<DeviceArray>(h))
    throw py::type_error(std::string(fn) + ": " + name + " must be a deepnum.cuda.DeviceArray, got " + type_name(h));
  return h.cast<DeviceArray>();
}

// a of float32 or float64, else a TypeError naming fn and the argument
void need_float(const char* fn, const char* name, const DeviceArray& a) {
  if (!a.dtype.equal(py::dtype::of<float>()) && !a.dtype.equal(py::dtype::of<double>()))
    throw py::type_error(std::string(fn) + ": " + name + " must be float32 or float64, got " + a.dtype_name());
}

void need_ndim(const char* fn, const char* name, const DeviceArray& a, std::size_t ndim) {
  if (a.shape.size() < ndim)
    throw std::invalid_argument(std::string(fn) + ": " + name + " must have at least " + std::to_string(ndim) +
                                " dimension" + (ndim > 1 ? "s" : "") + ", got shape " + shape_str(a.shape));
}

// b of a's dtype and shape (the elementwise functions of two or three arrays)
void need_like(const char* fn, const char* a_name, const DeviceArray& a, const char* b_name, const DeviceArray& b) {
  if (!b.dtype.equal(a.dtype))
    throw py::type_error(std::string(fn) + ": " + a_name + " and " + b_name + " must have one dtype, got " +
                         a.dtype_name() + " and " + b.dtype_name());
  if (b.shape != a.shape)
    throw std::invalid_argument(std::string(fn) + ": " + a_name + " has shape " + shape_str(a.shape) + " but " +
                                b_name + " has shape " + shape_str(b.shape));
}

// Runs f with the GIL released (f touches no Python object).
template <class F>
auto without_gil(F&& f) {
  py::gil_scoped_release nogil;
  return f();
}

i64 row_bytes(const DeviceArray& a) {  // bytes of one row of the first axis
  return a.shape[0] ? static_cast<i64>(a.nbytes()) / a.shape[0] : 0;
}

// The last axis of a as rows of n values, n >= 1, else a ValueError naming fn. (A struct, not a pair: C++17
// lambdas cannot capture structured bindings, and clang enforces it.)
struct Rows {
  i64 rows, n;
};
Rows last_axis_rows(const char* fn, const char* name, const DeviceArray& a) {
  need_ndim(fn, name, a, 1);
  const i64 n = a.shape.back();
  if (n == 0) throw std::invalid_argument(std::string(fn) + ": the last axis of " + name + " is empty, shape " +
                                          shape_str(a.shape));
  return {a.size() / n, n};
}

// The index of take_rows on the device: an int64 DeviceArray as it is, a host integer array checked and copied.
DeviceArray index_arg(const py::handle& h) {
  if (!py::isinstance<py::array>(h)) {
    DeviceArray index = device_arg("take_rows", "index", h);
    if (!index.dtype.equal(py::dtype::of<i64>()))
      throw py::type_error("take_rows: index must be int64 on the device, got " + index.dtype_name());
    if (index.shape.size() != 1)
      throw std::invalid_argument("take_rows: index must be 1-D, got shape " + shape_str(index.shape));
    return index;
  }
  const auto host = py::reinterpret_borrow<py::array>(h);
  const char kind = host.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error("take_rows: index must be an integer array, got " + py::str(host.dtype()).cast<std::string>());
  if (host.ndim() != 1)
    throw std::invalid_argument("take_rows: index must be 1-D, got shape " +
                                shape_str(std::vector<i64>(host.shape(), host.shape() + host.ndim())));
  return DeviceArray::from_numpy(py::array_t<i64, py::array::c_style | py::array::forcecast>::ensure(host));
}

DeviceArray take_rows(const py::handle& a_obj, const py::handle& index_obj) {
  const DeviceArray a = device_arg("take_rows", "a", a_obj);
  need_ndim("take_rows", "a", a, 1);
  const DeviceArray index = index_arg(index_obj);
  std::vector<i64> shape = a.shape;
  shape[0] = index.shape[0];
  DeviceArray out(shape, a.dtype);
  void* o = out.ptr();
  const void* src = a.ptr();
  const i64* idx = static_cast<const i64*>(index.ptr());
  const i64 n_index = index.shape[0], n_rows = a.shape[0], bytes = row_bytes(a);
  without_gil([&] { dc::take_rows(o, src, idx, n_index, n_rows, bytes); });
  return out;
}

DeviceArray swap01(const py::handle& a_obj) {
  const DeviceArray a = device_arg("swap01", "a", a_obj);
  need_ndim("swap01", "a", a, 2);
  std::vector<i64> shape = a.shape;
  std::swap(shape[0], shape[1]);
  DeviceArray out(shape, a.dtype);
  const i64 inner = a.shape[0] && a.shape[1] ? row_bytes(a) / a.shape[1] : 0;
  void* o = out.ptr();
  const void* src = a.ptr();
  without_gil([&] { dc::swap01(o, src, a.shape[0], a.shape[1], inner); });
  return out;
}

DeviceArray last_step(const py::handle& dy_obj, i64 steps) {
  const DeviceArray dy = device_arg("last_step", "dy", dy_obj);
  if (steps < 1) throw std::invalid_argument("last_step: steps must be >= 1, got " + std::to_string(steps));
  std::vector<i64> shape{steps};
  shape.insert(shape.end(), dy.shape.begin(), dy.shape.end());
  DeviceArray out(shape, dy.dtype);
  char* o = static_cast<char*>(out.ptr());
  const void* src = dy.ptr();
  const std::size_t step_bytes = dy.nbytes(), before = step_bytes * static_cast<std::size_t>(steps - 1);
  without_gil([&] {
    dc::fill_zero(o, before);
    dc::copy_on_device(o + before, src, step_bytes);
  });
  return out;
}

DeviceArray argmax(const py::handle& a_obj) {
  const DeviceArray a = device_arg("argmax", "a", a_obj);
  need_float("argmax", "a", a);
  const Rows r = last_axis_rows("argmax", "a", a);
  DeviceArray out(std::vector<i64>(a.shape.begin(), a.shape.end() - 1), py::dtype::of<i64>());
  return by_dtype("argmax", a.dtype, [&](auto t) {
    using T = decltype(t);
    i64* o = static_cast<i64*>(out.ptr());
    const T* src = static_cast<const T*>(a.ptr());
    without_gil([&] { dc::argmax_rows(o, src, r.rows, r.n); });
    return out;
  });
}

DeviceArray softmax(const py::handle& z_obj) {
  const DeviceArray z = device_arg("softmax", "z", z_obj);
  need_float("softmax", "z", z);
  const Rows r = last_axis_rows("softmax", "z", z);
  DeviceArray out(z.shape, z.dtype);
  return by_dtype("softmax", z.dtype, [&](auto t) {
    using T = decltype(t);
    T* o = static_cast<T*>(out.ptr());
    const T* src = static_cast<const T*>(z.ptr());
    without_gil([&] { dc::softmax_rows(o, src, r.rows, r.n); });
    return out;
  });
}

DeviceArray positive(const py::handle& z_obj) {
  const DeviceArray z = device_arg("positive", "z", z_obj);
  need_float("positive", "z", z);
  DeviceArray out(z.shape, py::dtype::of<i64>());
  return by_dtype("positive", z.dtype, [&](auto t) {
    using T = decltype(t);
    i64* o = static_cast<i64*>(out.ptr());
    const T* src = static_cast<const T*>(z.ptr());
    without_gil([&] { dc::positive(o, src, z.size()); });
    return out;
  });
}

// f(A{}) for an int64, float32 or float64 array, else a TypeError naming count_unequal and the argument
template <class F>
auto by_compared_dtype(const char* name, const DeviceArray& a, F&& f) {
  if (a.dtype.equal(py::dtype::of<i64>())) return f(i64{});
  if (a.dtype.equal(py::dtype::of<float>())) return f(float{});
  if (a.dtype.equal(py::dtype::of<double>())) return f(double{});
  throw py::type_error(std::string("count_unequal: ") + name + " must be int64, float32 or float64, got " +
                       a.dtype_name());
}

i64 count_unequal(const py::handle& a_obj, const py::handle& b_obj) {
  const DeviceArray a = device_arg("count_unequal", "a", a_obj), b = device_arg("count_unequal", "b", b_obj);
  if (a.shape != b.shape)
    throw std::invalid_argument("count_unequal: a has shape " + shape_str(a.shape) + " but b has shape " +
                                shape_str(b.shape));
  return by_compared_dtype("a", a, [&](auto ta) {
    return by_compared_dtype("b", b, [&](auto tb) {
      using A = decltype(ta);
      using B = decltype(tb);
      const A* pa = static_cast<const A*>(a.ptr());
      const B* pb = static_cast<const B*>(b.ptr());
      return without_gil([&] { return dc::count_unequal(pa, pb, a.size()); });
    });
  });
}

DeviceArray concat(const py::handle& arrays_obj) {
  if (!py::isinstance<py::sequence>(arrays_obj) || py::isinstance<py::str>(arrays_obj))
    throw py::type_error("concat: arrays must be a sequence of deepnum.cuda.DeviceArrays, got " +
                         type_name(arrays_obj));
  const auto items = py::reinterpret_borrow<py::sequence>(arrays_obj);
  if (items.size() == 0) throw std::invalid_argument("concat: needs at least one array");
  std::vector<DeviceArray> arrays;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string name = "arrays[" + std::to_string(i) + "]";
    arrays.push_back(device_arg("concat", name.c_str(), items[i]));
    const DeviceArray& a = arrays.back();
    need_ndim("concat", name.c_str(), a, 1);
    if (!a.dtype.equal(arrays[0].dtype))
      throw py::type_error("concat: arrays[0] is " + arrays[0].dtype_name() + " but " + name + " is " + a.dtype_name());
    if (!std::equal(a.shape.begin() + 1, a.shape.end(), arrays[0].shape.begin() + 1, arrays[0].shape.end()))
      throw std::invalid_argument("concat: arrays[0] has shape " + shape_str(arrays[0].shape) + " but " + name +
                                  " has shape " + shape_str(a.shape) + " (all but the first axis must agree)");
  }
  std::vector<i64> shape = arrays[0].shape;
  shape[0] = 0;
  for (const DeviceArray& a : arrays) shape[0] += a.shape[0];
  DeviceArray out(shape, arrays[0].dtype);
  std::vector<std::pair<const void*, std::size_t>> parts;
  for (const DeviceArray& a : arrays) parts.emplace_back(a.nbytes() ? a.ptr() : nullptr, a.nbytes());
  char* o = static_cast<char*>(out.ptr());
  without_gil([&] {
    for (const auto& [src, bytes] : parts) {
      dc::copy_on_device(o, src, bytes);
      o += bytes;
    }
  });
  return out;
}

double sigmoid_bce(const py::handle& z_obj, const py::handle& y_obj) {
  const DeviceArray z = device_arg("sigmoid_bce", "z", z_obj), y = device_arg("sigmoid_bce", "y", y_obj);
  need_float("sigmoid_bce", "z", z);
  need_like("sigmoid_bce", "z", z, "y", y);
  return by_dtype("sigmoid_bce", z.dtype, [&](auto t) {
    using T = decltype(t);
    const T* pz = static_cast<const T*>(z.ptr());
    const T* py_ = static_cast<const T*>(y.ptr());
    return without_gil([&] { return dc::sigmoid_bce(pz, py_, z.size()); });
  });
}

DeviceArray sigmoid_bce_grad(const py::handle& probs_obj, const py::handle& y_obj) {
  const DeviceArray probs = device_arg("sigmoid_bce_grad", "probs", probs_obj);
  const DeviceArray y = device_arg("sigmoid_bce_grad", "y", y_obj);
  need_float("sigmoid_bce_grad", "probs", probs);
  need_like("sigmoid_bce_grad", "probs", probs, "y", y);
  DeviceArray out(probs.shape, probs.dtype);
  return by_dtype("sigmoid_bce_grad", probs.dtype, [&](auto t) {
    using T = decltype(t);
    T* o = static_cast<T*>(out.ptr());
    const T* pp = static_cast<const T*>(probs.ptr());
    const T* py_ = static_cast<const T*>(y.ptr());
    without_gil([&] { dc::sigmoid_bce_grad(o, pp, py_, probs.size()); });
    return out;
  });
}

DeviceArray add_l1(const py::handle& g_obj, const py::handle& p_obj, double l1) {
  const DeviceArray g = device_arg("add_l1", "g", g_obj), p = device_arg("add_l1", "p", p_obj);
  need_float("add_l1", "g", g);
  need_like("add_l1", "g", g, "p", p);
  DeviceArray out(g.shape, g.dtype);
  return by_dtype("add_l1", g.dtype, [&](auto t) {
    using T = decltype(t);
    T* o = static_cast<T*>(out.ptr());
    const T* pg = static_cast<const T*>(g.ptr());
    const T* pp = static_cast<const T*>(p.ptr());
    without_gil([&] { dc::add_l1(o, pg, pp, l1, g.size()); });
    return out;
  });
}

void bind_array_functions(py::module_& m) {
  using py::arg;
  m.def("take_rows", &take_rows, arg("a"), arg("index"),
        "The rows index (an int64 DeviceArray, or a host integer array, copied) of a, gathered into a new array.");
  m.def("swap01", &swap01, arg("a"), "A copy of a with its first two axes swapped (batch-first <-> time-major).");
  m.def("last_step", &last_step, arg("dy"), arg("steps"),
        "(steps, *dy.shape) zeros but for the last step, which is dy (a many-to-one RNN's dh_all).");
  m.def("argmax", &argmax, arg("a"), "Index of the largest entry along the last axis, int64 (the first; NaN wins).");
  m.def("softmax", &softmax, arg("z"), "Softmax along the last axis (max-subtracted).");
  m.def("positive", &positive, arg("z"), "1 where z > 0, else 0, int64.");
  m.def("count_unequal", &count_unequal, arg("a"), arg("b"),
        "How many entries of a and b (one shape) differ, counted on the device, as a Python int.");
  m.def("concat", &concat, arg("arrays"), "The arrays joined along the first axis (device-to-device copies).");
  m.def("sigmoid_bce", &sigmoid_bce, arg("z"), arg("y"),
        "Mean of max(z, 0) - z*y + log1p(exp(-|z|)) (the binary cross-entropy of sigmoid(z)), as a Python float.");
  m.def("sigmoid_bce_grad", &sigmoid_bce_grad, arg("probs"), arg("y"), "(probs - y) / probs.size.");
  m.def("add_l1", &add_l1, arg("g"), arg("p"), arg("l1"), "g + l1 * sign(p), a new array.");
}


// ---- DLPack (cuda/dlpack.h) -----------------------------------------------------------------
// DeviceArray.__dlpack__ exports a capsule that keeps the array's Buffer alive until the consumer calls its deleter
// (or the capsule dies unconsumed); _from_dlpack takes a producer's capsule (deepnum.cuda.from_dlpack calls the
// producer's __dlpack__ first) into a DeviceArray that owns the producer's memory through a Buffer whose release
// calls the producer's deleter once. Neither copies: the exported array is the same memory, and so is the imported.

namespace dl = deepnum::dlpack;

template <class M>
constexpr const char* capsule_name() {
  return std::is_same_v<M, dl::DLManagedTensorVersioned> ? "dltensor_versioned" : "dltensor";
}
template <class M>
constexpr const char* used_capsule_name() {
  return std::is_same_v<M, dl::DLManagedTensorVersioned> ? "used_dltensor_versioned" : "used_dltensor";
}

// What an exported capsule's manager_ctx owns: the array's memory and the shape and strides the DLTensor points to.
// No Python object, so the deleter needs no GIL (the consumer may call it from any thread).
template <class M>
struct Exported {
  M managed{};
  std::shared_ptr<dc::Buffer> buf;
  std::vector<std::int64_t> shape, strides;
};

template <class M>
void delete_exported(M* self) {
  delete static_cast<Exported<M>*>(self->manager_ctx);
}

// A capsule destroyed while it still has its first name was never consumed: its tensor is freed here.
template <class M>
void capsule_destructor(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, capsule_name<M>())) return;  // consumed (renamed): the consumer owns it
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  auto* m = static_cast<M*>(PyCapsule_GetPointer(capsule, capsule_name<M>()));
  if (m != nullptr && m->deleter != nullptr) m->deleter(m);
  PyErr_Restore(type, value, traceback);
}

dl::DLDataType dl_dtype(const py::dtype& dtype) {
  const auto bits = static_cast<std::uint8_t>(8 * dtype.itemsize());
  switch (dtype.kind()) {
    case 'f': return {dl::kDLFloat, bits, 1};
    case 'i': return {dl::kDLInt, bits, 1};
    case 'u': return {dl::kDLUInt, bits, 1};
    case 'b': return {dl::kDLBool, bits, 1};
    default: return {dl::kDLComplex, bits, 1};  // 'c': DeviceArray holds no other kind
  }
}

std::string dl_dtype_str(const dl::DLDataType& t) {
  static const char* const names[] = {"int", "uint", "float", "opaque handle ", "bfloat", "complex", "bool"};
  std::string s = t.code <= dl::kDLBool ? std::string(names[t.code]) + std::to_string(t.bits)
                                        : "DLPack type code " + std::to_string(t.code) + " of " +
                                              std::to_string(t.bits) + " bits";
  if (t.lanes != 1) s += " x" + std::to_string(t.lanes) + " lanes";
  return s;
}

std::string dl_device_str(const dl::DLDevice& d) {
  const char* name = d.device_type == dl::kDLCPU            ? "cpu"
                     : d.device_type == dl::kDLCUDA         ? "cuda"
                     : d.device_type == dl::kDLCUDAHost     ? "cuda pinned host memory"
                     : d.device_type == dl::kDLCUDAManaged  ? "cuda managed memory"
                     : d.device_type == dl::kDLROCM         ? "rocm"
                     : d.device_type == dl::kDLROCMHost     ? "rocm pinned host memory"
                     : d.device_type == dl::kDLMetal        ? "metal"
                     : d.device_type == dl::kDLOneAPI       ? "oneapi"
                                                             : "device";
  return std::string(name) + " (DLPack device type " + std::to_string(d.device_type) + ", id " +
         std::to_string(d.device_id) + ")";
}

// The stream argument of __dlpack__ for CUDA (the array API standard): None or 1 is the legacy default stream, on
// which deepnum runs everything, so the consumer may use the data at once; -1 asks for no synchronisation; 2 is the
// per-thread default stream and a larger int a cudaStream_t: that stream waits (on the device, the host does not
// block) for an event recorded on deepnum's stream after the work queued so far. 0 is ambiguous and refused.
void order_consumer_stream(const py::object& stream) {
  if (stream.is_none()) return;
  if (!deepnum::contract::is_int(stream))
    throw py::type_error("DeviceArray.__dlpack__: stream must be None or an int (a CUDA stream), got " +
                         type_name(stream));
  const auto value = stream.cast<long long>();
  if (value == 1 || value == -1) return;
  if (value == 0 || value < -1)
    throw std::invalid_argument("DeviceArray.__dlpack__: stream " + std::to_string(value) +
                                " is not a CUDA stream for DLPack (None or 1: the legacy default stream, 2: the "
                                "per-thread default stream, -1: no synchronisation, or a cudaStream_t)");
  const cudaStream_t consumer = value == 2 ? cudaStreamPerThread : reinterpret_cast<cudaStream_t>(value);
  cudaEvent_t event;
  DN_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  const cudaError_t recorded = cudaEventRecord(event, 0);
  const cudaError_t waited = recorded == cudaSuccess ? cudaStreamWaitEvent(consumer, event, 0) : recorded;
  cudaEventDestroy(event);  // released once the wait has been satisfied
  DN_CHECK(waited);
}

template <class M>
py::object export_capsule(const DeviceArray& a, std::uint32_t minor, bool copied) {
  auto ctx = std::make_unique<Exported<M>>();
  ctx->buf = a.buf;
  ctx->shape = a.shape;
  ctx->strides.assign(a.shape.size(), 1);
  for (std::size_t i = a.shape.size(); i-- > 1;)  // C order; a 0-length axis counts as 1, as NumPy and PyTorch
    ctx->strides[i - 1] = ctx->strides[i] * std::max<i64>(a.shape[i], 1);
  dl::DLTensor& t = ctx->managed.dl_tensor;
  t.data = a.ptr();
  t.device = {dl::kDLCUDA, a.buf->device()};
  t.ndim = static_cast<std::int32_t>(a.shape.size());
  t.dtype = dl_dtype(a.dtype);
  t.shape = ctx->shape.data();
  t.strides = ctx->strides.data();
  t.byte_offset = 0;
  if constexpr (std::is_same_v<M, dl::DLManagedTensorVersioned>) {
    ctx->managed.version = {dl::kMajorVersion, minor};
    ctx->managed.flags = copied ? dl::kFlagIsCopied : 0;
  }
  ctx->managed.manager_ctx = ctx.get();
  ctx->managed.deleter = &delete_exported<M>;
  PyObject* capsule = PyCapsule_New(&ctx->managed, capsule_name<M>(), &capsule_destructor<M>);
  if (capsule == nullptr) throw py::error_already_set();
  ctx.release();  // owned by the capsule now (and then by its consumer)
  return py::reinterpret_steal<py::object>(capsule);
}

// A pair of ints (max_version, dl_device), else a TypeError naming the argument.
std::pair<long long, long long> int_pair(const char* name, const py::object& v) {
  using deepnum::contract::is_int;
  if (!py::isinstance<py::tuple>(v) || py::len(v) != 2 || !is_int(v[py::int_(0)]) || !is_int(v[py::int_(1)]))
    throw py::type_error(std::string("DeviceArray.__dlpack__: ") + name + " must be None or a pair of ints, got " +
                         deepnum::contract::repr_str(v));
  return {v[py::int_(0)].cast<long long>(), v[py::int_(1)].cast<long long>()};
}

// DeviceArray.__dlpack__(*, stream, max_version, dl_device, copy): the array API standard's protocol.
py::object dlpack(const DeviceArray& self, const py::object& stream, const py::object& max_version,
                  const py::object& dl_device, const py::object& copy) {
  self.ptr();  // a _spec array has no memory to share: RuntimeError
  const int device = self.buf->device();
  if (!dl_device.is_none()) {
    const auto want = int_pair("dl_device", dl_device);
    if (want.first != dl::kDLCUDA || want.second != device)
      throw py::buffer_error("DeviceArray.__dlpack__: cannot export to " +
                             dl_device_str({static_cast<dl::DLDeviceType>(want.first), static_cast<std::int32_t>(want.second)}) +
                             ": the array is on " + dl_device_str({dl::kDLCUDA, device}) +
                             " (DeviceArray.to_numpy copies it to the host)");
  }
  if (!copy.is_none() && !py::isinstance<py::bool_>(copy))
    throw py::type_error("DeviceArray.__dlpack__: copy must be None, True or False, got " + type_name(copy));
  const bool copied = !copy.is_none() && copy.cast<bool>();
  const DeviceArray a = copied ? self.copy() : self;
  order_consumer_stream(stream);
  if (max_version.is_none()) return export_capsule<dl::DLManagedTensor>(a, 0, copied);
  const auto [major, minor] = int_pair("max_version", max_version);
  if (major < 1) return export_capsule<dl::DLManagedTensor>(a, 0, copied);
  const auto exported_minor = major > 1 ? dl::kMinorVersion : static_cast<std::uint32_t>(
      std::clamp<long long>(minor, 0, dl::kMinorVersion));
  return export_capsule<dl::DLManagedTensorVersioned>(a, exported_minor, copied);
}

// The producer's tensor as a DeviceArray that owns it, or a TypeError / ValueError naming from_dlpack (the capsule
// then stays unconsumed, and its own destructor frees the tensor).
template <class M>
DeviceArray import_capsule(PyObject* capsule) {
  auto* m = static_cast<M*>(PyCapsule_GetPointer(capsule, capsule_name<M>()));
  if (m == nullptr) throw py::error_already_set();
  std::uint64_t flags = 0;
  if constexpr (std::is_same_v<M, dl::DLManagedTensorVersioned>) {
    if (m->version.major != dl::kMajorVersion)
      throw py::buffer_error("from_dlpack: the producer exported DLPack " + std::to_string(m->version.major) + "." +
                             std::to_string(m->version.minor) + "; deepnum reads DLPack 1.x");
    flags = m->flags;
  }
  const dl::DLTensor& t = m->dl_tensor;
  int device = 0;
  DN_CHECK(cudaGetDevice(&device));
  if (t.device.device_type != dl::kDLCUDA)
    throw py::type_error("from_dlpack: the tensor is on " + dl_device_str(t.device) +
                         ", not on a CUDA device (DeviceArray.from_numpy copies a host array)");
  if (t.device.device_id != device)
    throw std::invalid_argument("from_dlpack: the tensor is on " + dl_device_str(t.device) +
                                " but deepnum uses CUDA device " + std::to_string(device));
  const dl::DLDataType dt = t.dtype;
  const char* dtype_name = dt.lanes != 1                          ? nullptr
                           : dt.code == dl::kDLFloat && dt.bits == 32 ? "float32"
                           : dt.code == dl::kDLFloat && dt.bits == 64 ? "float64"
                           : dt.code == dl::kDLInt && dt.bits == 64   ? "int64"
                                                                       : nullptr;
  if (dtype_name == nullptr)
    throw py::type_error("from_dlpack: dtype " + dl_dtype_str(dt) +
                         " is not supported (deepnum's device arrays are float32, float64 or int64)");
  if (t.ndim < 0) throw std::invalid_argument("from_dlpack: negative ndim " + std::to_string(t.ndim));
  std::vector<i64> shape(t.shape, t.shape + t.ndim);
  const py::dtype dtype(dtype_name);
  const std::size_t bytes = checked_nbytes("from_dlpack", shape, dtype);
  if (t.strides != nullptr && bytes != 0) {
    i64 expected = 1;
    for (std::int32_t i = t.ndim; i-- > 0;) {
      if (shape[i] != 1 && t.strides[i] != expected)
        throw std::invalid_argument(
            "from_dlpack: the tensor of shape " + shape_str(shape) + " has strides " +
            shape_str(std::vector<i64>(t.strides, t.strides + t.ndim)) +
            " (in elements): not C-contiguous; deepnum takes C-contiguous arrays only and does not copy (make it "
            "contiguous first, e.g. tensor.contiguous() in PyTorch)");
      expected *= shape[i];
    }
  }
  if (flags & dl::kFlagReadOnly)
    throw std::invalid_argument("from_dlpack: the producer exported the tensor read-only, and deepnum's device "
                                "arrays are writable (the ops update parameters in place): copy it first");
  void* data = static_cast<char*>(t.data) + t.byte_offset;
  if (PyCapsule_SetName(capsule, used_capsule_name<M>()) != 0) throw py::error_already_set();
  // From here on the tensor is ours: its deleter runs exactly once, when the last array on it is freed.
  std::shared_ptr<dc::Buffer> buf;
  try {
    buf = std::make_shared<dc::Buffer>(data, bytes, device, [m] {
      if (m->deleter != nullptr) m->deleter(m);
    });
  } catch (...) {
    if (m->deleter != nullptr) m->deleter(m);
    throw;
  }
  DeviceArray a("from_dlpack", std::move(shape), dtype, /*spec=*/true);  // allocates nothing: the memory is buf's
  a.buf = std::move(buf);
  return a;
}

DeviceArray from_dlpack_capsule(const py::handle& capsule) {
  if (!PyCapsule_CheckExact(capsule.ptr()))
    throw py::type_error("from_dlpack: __dlpack__ returned " + type_name(capsule) + ", not a DLPack capsule");
  const char* name = PyCapsule_GetName(capsule.ptr());
  const std::string n = name ? name : "";
  if (n == capsule_name<dl::DLManagedTensorVersioned>())
    return import_capsule<dl::DLManagedTensorVersioned>(capsule.ptr());
  if (n == capsule_name<dl::DLManagedTensor>()) return import_capsule<dl::DLManagedTensor>(capsule.ptr());
  if (n.rfind("used_", 0) == 0)
    throw std::invalid_argument("from_dlpack: the DLPack capsule was already consumed (named '" + n + "')");
  throw py::type_error("from_dlpack: a capsule named '" + n + "' is not a DLPack tensor");
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "deepnum CUDA kernels on device arrays. Use deepnum.ops with the 'cuda' backend, not this module.";
  using py::arg;

  py::class_<DeviceArray>(m, "DeviceArray", "A C-contiguous array in CUDA device memory (freed with its last handle).")
      .def_static("empty", [](const py::handle& shape, const py::object& dtype) {
            return DeviceArray("DeviceArray.empty", shape_arg("DeviceArray.empty", shape), py::dtype::from_args(dtype));
          }, arg("shape"), arg("dtype") = py::dtype::of<float>(), "Uninitialised device array.")
      .def_static("zeros", [](const py::handle& shape, const py::object& dtype) {
            DeviceArray d("DeviceArray.zeros", shape_arg("DeviceArray.zeros", shape), py::dtype::from_args(dtype));
            dc::fill_zero(d.ptr(), d.nbytes());
            return d;
          }, arg("shape"), arg("dtype") = py::dtype::of<float>(), "Device array of zeros.")
      .def_static("from_numpy", &DeviceArray::from_numpy, arg("a"), "Copy a numpy array to the device (C order).")
      .def("to_numpy", &DeviceArray::to_numpy, "Copy to a new numpy array on the host.")
      .def("numpy", &DeviceArray::to_numpy, "Copy to a new numpy array on the host.")
      .def("copy", &DeviceArray::copy, "A new device array with the same contents (device-to-device copy).")
      .def("rows", &DeviceArray::rows, arg("start"), arg("stop"),
           "Rows [start, stop) of the first axis: a view sharing this array's memory (no copy).")
      .def("reshape", [](const DeviceArray& a, const py::handle& shape) {
            return a.reshape(shape_arg("DeviceArray.reshape", shape));
          },
           arg("shape"), "The same elements in another shape (one -1 allowed): a view sharing this array's memory.")
      .def_property_readonly("shape", &DeviceArray::shape_tuple, "The shape, a tuple of ints.")
      .def_property_readonly("dtype", [](const DeviceArray& a) { return a.dtype; }, "The numpy.dtype of the elements.")
      .def_property_readonly("size", &DeviceArray::size, "The number of elements.")
      .def_property_readonly("ndim", [](const DeviceArray& a) { return a.shape.size(); }, "The number of dimensions.")
      .def_property_readonly("nbytes", &DeviceArray::nbytes, "The size of the data in bytes.")
      .def_property_readonly("__cuda_array_interface__", &cuda_array_interface)
      .def("__dlpack__", &dlpack, py::kw_only(), arg("stream") = py::none(), arg("max_version") = py::none(),
           arg("dl_device") = py::none(), arg("copy") = py::none(),
           "A DLPack capsule of this array (no copy unless copy=True): 'dltensor_versioned' (DLPack 1.1) when "
           "max_version >= (1, 0), the legacy 'dltensor' otherwise. stream (CUDA, as the array API standard): None "
           "or 1 the legacy default stream deepnum runs on, 2 the per-thread default stream, a larger int a "
           "cudaStream_t, which then waits for the work queued here; -1 no synchronisation.")
      .def("__dlpack_device__", [](const DeviceArray& a) {
            a.ptr();  // a _spec array is on no device
            return py::make_tuple(static_cast<int>(deepnum::dlpack::kDLCUDA), a.buf->device());
          }, "(2, device id): DLPack's kDLCUDA and the CUDA device the memory is on.")
      .def("__len__", [](const DeviceArray& a) {
            if (a.shape.empty()) throw py::type_error("len() of a 0-d DeviceArray");
            return a.shape[0];
          })
      .def("__repr__", [](const DeviceArray& a) {
            return "DeviceArray(shape=" + shape_str(a.shape) + ", dtype=" + a.dtype_name() + ")";
          });

  m.def("_spec", [](const py::handle& shape, const py::object& dtype) {
        return DeviceArray("_spec", shape_arg("_spec", shape), py::dtype::from_args(dtype), /*spec=*/true);
      }, arg("shape"), arg("dtype") = py::dtype::of<float>(),
      "A DeviceArray that holds no memory, for testing the argument checks without a GPU (kernels and copies "
      "on it raise RuntimeError).");
  m.def("_from_dlpack", &from_dlpack_capsule, arg("capsule"),
        "The DeviceArray over a DLPack capsule's CUDA tensor, sharing its memory (deepnum.cuda.from_dlpack calls "
        "the producer's __dlpack__ and then this).");
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

  deepnum::contract::bind_ops<DeviceArrays>(m);

#ifdef DEEPNUM_CUDA_EMULATE
  m.attr("EMULATED") = true;
  m.def("_set_limits", [](i64 max_blocks, i64 conv_chunk_elems) {
        auto& limits = dc::emulated_limits();
        const py::tuple previous = py::make_tuple(limits.max_blocks, limits.conv_chunk_elems);
        if (max_blocks < 1 || max_blocks > 65535 || conv_chunk_elems < 1)
          throw std::invalid_argument("_set_limits: need 1 <= max_blocks <= 65535 and conv_chunk_elems >= 1, got " +
                                      std::to_string(max_blocks) + " and " + std::to_string(conv_chunk_elems));
        limits.max_blocks = max_blocks;
        limits.conv_chunk_elems = conv_chunk_elems;
        return previous;
      }, arg("max_blocks"), arg("conv_chunk_elems"),
      "Emulated build only: set the grid cap and conv2d's chunk size (cuda/common.cuh's Limits) and return the "
      "previous pair, so that tests reach shapes past each limit at small sizes.");
  m.def("_emulation_selftest", &deepnum::emulate::selftest, arg("name"), arg("base") = 0,
        "Emulated build only: run one of emulate/selftest.cpp's kernels (64 ints out), for tests of the emulation.");
#else
  m.attr("EMULATED") = false;
#endif

  m.def("_host_activation_forward", &host_activation_forward, arg("x"), arg("act"), arg("alpha"));
  m.def("_host_activation_backward", &host_activation_backward, arg("y"), arg("dy"), arg("act"), arg("alpha"));
  m.def("_host_dropout_uniform", &host_dropout_uniform, arg("seed"), arg("n"));
  m.def("_host_dropout_mask", &host_dropout_mask, arg("x"), arg("p"), arg("seed"));
  m.def("_host_sgd_update", &host_sgd_update, arg("param"), arg("velocity"), arg("grad"), arg("lr"), arg("momentum"),
        arg("nesterov"), arg("weight_decay"));
  m.def("_host_adam_update", &host_adam_update, arg("param"), arg("m"), arg("v"), arg("grad"), arg("lr"),
        arg("beta1"), arg("beta2"), arg("eps"), arg("weight_decay"), arg("step"));
  m.def("_host_softmax_nll_forward", &host_softmax_nll_forward, arg("logits"), arg("labels"));

  bind_array_functions(m);
}
