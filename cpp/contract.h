// Every op's contract, written once: the argument rules and their messages, and the op table, for the three
// compiled modules (one binding source, instantiated three times on an array adapter):
//
//   deepnum._core      (cpp/bindings.cpp)  numpy arrays, runs the C++ kernels
//   deepnum._cuda      (cuda/bindings.cpp) DeviceArrays, runs the CUDA kernels
//   deepnum._contract  (cpp/contract.cpp)  numpy arrays, runs nothing: returns the kernel's argument tuple
//                                          for the Python kernels (deepnum._numba, deepnum._reference)
//
// An op takes its inputs in the order of its kernel in deepnum/_reference.py with the outputs removed, raw user
// values for the scalars, and need_dx last where it applies. It checks every argument (below), then computes and
// checks the output sizes, then allocates the outputs, and then
//   * runs (_core, _cuda): releases the GIL, calls deepnum::<op><T>(outputs..., inputs..., sizes, scalars), and
//     returns None (no output, no value), the output, or a tuple of the outputs; a kernel's double return value
//     (the loss) comes first, as a Python float: (loss, probs) / loss. A dx that is not wanted is a size-0 array.
//   * or (_contract): also checks the data ranges the C++ kernels check themselves (labels, argmax), and returns
//     the full argument tuple of the Python kernel: outputs, inputs, converted scalars (activation names as codes,
//     bptt_steps None or >= T as 0, clip None as 0.0, velocity None and an unwanted dx as size-0 arrays).
//
// Faults: TypeError (py::type_error) for a wrong type (not the backend's array type, a dtype, a layout,
// a read-only in-place array, a Python scalar of the wrong type), ValueError (std::invalid_argument) for a
// wrong value (ndim, empty, shapes, ranges, sizes); every message starts with "<op>: ".
//
// The array adapter A (NumpyArrays in numpy_arrays.h, DeviceArrays in cuda/bindings.cpp) provides:
//   Array                              the C++ handle of an array
//   kTypeName                          the array type's name in messages ("numpy.ndarray")
//   kRuns                              true: run the kernels; false: return the kernel's argument tuple
//   is_array(h), cast(h), object(a)    Python <-> Array
//   ndim(a), dim(a, i), size(a)        shape
//   dtype(a)                           a py::dtype
//   c_contiguous(a), writable(a)       layout
//   data(a)                            the data pointer (with the GIL released; may throw std::runtime_error)
//   empty(shape, dtype), zeros(...)    a new array
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels.h"

namespace deepnum {
namespace contract {

namespace py = pybind11;
using Shape = std::vector<i64>;

// X(name, number of output arrays, the kernel returns a double (the loss), bound in _cuda too)
#define DEEPNUM_OPS(X)                          \
  X(gemm, 1, false, true)                       \
  X(linear_forward, 1, false, true)             \
  X(linear_backward, 3, false, true)            \
  X(mlp_train_step, 0, true, false)             \
  X(conv2d_forward, 1, false, true)             \
  X(conv2d_backward, 3, false, true)            \
  X(max_pool2d_forward, 2, false, true)         \
  X(max_pool2d_backward, 1, false, true)        \
  X(softmax_nll_forward, 1, true, true)         \
  X(softmax_nll_backward, 1, false, true)       \
  X(activation_forward, 1, false, true)         \
  X(activation_backward, 1, false, true)        \
  X(dropout_forward, 2, false, true)            \
  X(dropout_backward, 1, false, true)           \
  X(sgd_update, 0, false, true)                 \
  X(adam_update, 0, false, true)                \
  X(rnn_forward, 1, false, true)                \
  X(rnn_backward, 5, false, true)

// ---- messages ------------------------------------------------------------------------------

inline std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

inline std::string type_name(py::handle h) { return py::str(py::type::of(h).attr("__name__")).cast<std::string>(); }
inline std::string repr_str(py::handle h) {
  try {
    return py::repr(h).cast<std::string>();
  } catch (py::error_already_set&) {  // a __repr__ that raises: the message names the type instead
    return "<" + type_name(h) + " object>";
  }
}
inline std::string dtype_str(const py::dtype& d) { return py::str(d).cast<std::string>(); }
inline std::string real_str(double v) { return py::str(py::float_(v)).cast<std::string>(); }

// Python's numbers.Integral and numbers.Real (kept for the life of the process: never released at exit).
inline py::handle numbers(const char* abc) {
  static PyObject* integral = py::object(py::module_::import("numbers").attr("Integral")).release().ptr();
  static PyObject* real = py::object(py::module_::import("numbers").attr("Real")).release().ptr();
  return abc[0] == 'I' ? integral : real;
}
inline bool is_bool(py::handle h) {
  if (PyBool_Check(h.ptr())) return true;
  const std::string t = type_name(h);  // numpy.bool_ ("bool" in numpy 2, "bool_" before)
  return (t == "bool" || t == "bool_") && py::str(py::type::of(h).attr("__module__")).cast<std::string>() == "numpy";
}

// An int that is not a bool: a Python int, or a numbers.Integral such as numpy.int32.
inline bool is_int(py::handle h) {
  if (PyLong_CheckExact(h.ptr())) return true;
  return !is_bool(h) && (PyLong_Check(h.ptr()) || py::isinstance(h, numbers("Integral")));
}

// A real number that is not a bool: a Python float or int, or a numbers.Real such as numpy.float32.
inline bool is_real(py::handle h) {
  if (PyFloat_CheckExact(h.ptr()) || PyLong_CheckExact(h.ptr())) return true;
  return !is_bool(h) && (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()) || py::isinstance(h, numbers("Real")));
}

// ---- the checks of one call ----------------------------------------------------------------

template <class A>
class Call {
 public:
  using Array = typename A::Array;
  const char* op;

  explicit Call(const char* op_) : op(op_) {}

  [[noreturn]] void value_error(const std::string& msg) const { throw std::invalid_argument(std::string(op) + ": " + msg); }
  [[noreturn]] void type_error(const std::string& msg) const { throw py::type_error(std::string(op) + ": " + msg); }

  Shape shape(const Array& a) const {
    Shape s(A::ndim(a));
    for (size_t i = 0; i < s.size(); ++i) s[i] = A::dim(a, static_cast<int>(i));
    return s;
  }
  std::string shape_of(const Array& a) const { return shape_str(shape(a)); }

  Array array(const char* name, py::handle h) const {
    if (!A::is_array(h)) type_error(std::string(name) + " must be a " + A::kTypeName + ", got " + type_name(h));
    return A::cast(h);
  }
  static bool is_float(const py::dtype& d) {
    return d.equal(py::dtype::of<float>()) || d.equal(py::dtype::of<double>());
  }
  void contiguous(const char* name, const Array& a) const {
    if (!A::c_contiguous(a)) type_error(std::string(name) + " must be C-contiguous");
  }

  // A float32/float64 input: its type, dtype, ndim (0: any) and layout, not empty, C-contiguous.
  Array in(const char* name, py::handle h, int ndim = 0, const char* layout = nullptr) const {
    Array a = array(name, h);
    if (!is_float(A::dtype(a))) type_error(std::string(name) + " must be float32 or float64, got " + dtype_str(A::dtype(a)));
    if (ndim && A::ndim(a) != ndim)
      value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D" + (layout ? std::string(" ") + layout : "") +
                  ", got shape " + shape_of(a));
    if (A::size(a) == 0) value_error(std::string(name) + " is empty, shape " + shape_of(a));
    contiguous(name, a);
    return a;
  }

  // An array updated in place: float, writable and C-contiguous (never copied).
  Array in_place(const char* name, py::handle h) const {
    if (!A::is_array(h))
      type_error(std::string(name) + " must be a float32 or float64 " + A::kTypeName + ", got " + type_name(h));
    Array a = A::cast(h);
    if (!is_float(A::dtype(a)))
      type_error(std::string(name) + " must be a float32 or float64 " + A::kTypeName + ", got " + dtype_str(A::dtype(a)));
    if (!A::c_contiguous(a) || !A::writable(a))
      type_error(std::string(name) +
                 " must be writable and C-contiguous (it is updated in place; a copy would be updated instead)");
    return a;
  }

  // An int64 index array of the given shape: labels (N,) or argmax (like dy).
  Array index(const char* name, py::handle h, const Shape& want, const char* like = nullptr) const {
    Array a = array(name, h);
    if (!A::dtype(a).equal(py::dtype::of<i64>()))
      type_error(std::string(name) + " must be int64, got " + dtype_str(A::dtype(a)));
    if (shape(a) != want) {
      if (like) value_error(std::string(name) + " has shape " + shape_of(a) + " but " + like + " has shape " + shape_str(want));
      value_error(std::string(name) + " must have shape " + shape_str(want) + ", got " + shape_of(a));
    }
    contiguous(name, a);
    return a;
  }

  void same_dtype(std::initializer_list<std::pair<const char*, const Array*>> arrays) const {
    const py::dtype d = A::dtype(*arrays.begin()->second);
    for (const auto& [name, a] : arrays)
      if (!A::dtype(*a).equal(d)) {
        std::string desc;
        for (const auto& [n, b] : arrays) desc += (desc.empty() ? "" : ", ") + std::string(n) + " " + dtype_str(A::dtype(*b));
        type_error("all arrays must share one dtype, got " + desc);
      }
  }

  void same_shape(const char* name, const Array& a, const char* ref_name, const Array& ref) const {
    if (shape(a) != shape(ref))
      value_error(std::string(name) + " has shape " + shape_of(a) + " but " + ref_name + " has shape " + shape_of(ref));
  }

  // ---- Python scalars --------------------------------------------------------------------

  // An int (not a bool) >= minimum and < 2**63.
  i64 integer(const char* name, py::handle v, i64 minimum) const {
    if (!is_int(v)) type_error(std::string(name) + " must be an int, got " + repr_str(v));
    const py::int_ iv = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
    if (!iv) throw py::error_already_set();
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(iv.ptr(), &overflow);
    if (overflow > 0) value_error(std::string(name) + " must be < 2**63, got " + py::str(iv).cast<std::string>());
    if (overflow < 0 || x < minimum)
      value_error(std::string(name) + " must be >= " + std::to_string(minimum) + ", got " + py::str(iv).cast<std::string>());
    return static_cast<i64>(x);
  }

  // An int in [0, 2**64).
  std::uint64_t seed(const char* name, py::handle v) const {
    if (!is_int(v)) type_error(std::string(name) + " must be an int, got " + repr_str(v));
    const py::int_ iv = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
    if (!iv) throw py::error_already_set();
    const std::string s = py::str(iv).cast<std::string>();
    if (PyObject_RichCompareBool(iv.ptr(), py::int_(0).ptr(), Py_LT) == 1)
      value_error(std::string(name) + " must be >= 0, got " + s);
    const unsigned long long x = PyLong_AsUnsignedLongLong(iv.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
      value_error(std::string(name) + " must be < 2**64, got " + s);
    }
    return x;
  }

  // An int or a pair (tuple or list) of ints, each >= minimum.
  std::pair<i64, i64> pair(const char* name, py::handle v, i64 minimum) const {
    if (PyTuple_Check(v.ptr()) || PyList_Check(v.ptr())) {
      const py::sequence s = py::reinterpret_borrow<py::sequence>(v);
      if (s.size() != 2) value_error(std::string(name) + " must be an int or a pair of ints, got " + repr_str(v));
      return {integer(name, s[0], minimum), integer(name, s[1], minimum)};
    }
    if (!is_int(v)) type_error(std::string(name) + " must be an int or a pair of ints, got " + repr_str(v));
    const i64 x = integer(name, v, minimum);
    return {x, x};
  }

  bool boolean(const char* name, py::handle v) const {
    if (!PyBool_Check(v.ptr()) && !is_bool(v)) type_error(std::string(name) + " must be a bool, got " + repr_str(v));
    return PyObject_IsTrue(v.ptr()) == 1;
  }

  // A finite real number (not a bool) in [lo, hi] or [lo, hi).
  double real(const char* name, py::handle v, double lo = -INFINITY, double hi = INFINITY, bool hi_open = false) const {
    if (!is_real(v))
      type_error(std::string(name) + " must be a real number, got " + repr_str(v));
    double x = PyFloat_AsDouble(v.ptr());
    if (x == -1.0 && PyErr_Occurred()) {  // an int beyond the float range
      PyErr_Clear();
      x = INFINITY;
    }
    if (!std::isfinite(x) || x < lo || (hi_open ? x >= hi : x > hi)) {
      const std::string rng = "[" + (std::isinf(lo) ? std::string("-inf") : real_str(lo)) + ", " +
                              (std::isinf(hi) ? std::string("inf") : real_str(hi)) + (hi_open ? ")" : "]");
      value_error(std::string(name) + " must be finite and in " + rng + ", got " +
                  (std::isinf(x) && !PyFloat_Check(v.ptr()) ? repr_str(v) : real_str(x)));
    }
    return x;
  }

  // An activation name (a str) -> its code; rnn: only those the RNN kernels accept.
  int activation(const char* name, py::handle v, bool rnn = false) const {
    if (!PyUnicode_Check(v.ptr())) type_error(std::string(name) + " must be a str, got " + repr_str(v));
    Py_ssize_t len = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(v.ptr(), &len);
    if (!utf8) PyErr_Clear();  // not encodable (lone surrogates): no activation's name
    const std::string s = utf8 ? std::string(utf8, static_cast<size_t>(len)) : std::string();
    for (const auto& a : kActivations)
      if (s == a.name && (a.rnn || !rnn)) return a.code;
    if (rnn) {
      std::string names;
      for (const auto& a : kActivations)
        if (a.rnn) names += (names.empty() ? "'" : ", '") + std::string(a.name) + "'";
      value_error(std::string(name) + " must be one of [" + names + "], got " + repr_str(v));
    }
    std::vector<std::string> sorted;
    for (const auto& a : kActivations) sorted.emplace_back(a.name);
    std::sort(sorted.begin(), sorted.end());
    std::string names;
    for (const auto& n : sorted) names += (names.empty() ? "'" : ", '") + n + "'";
    value_error("unknown activation " + repr_str(v) + "; choose one of [" + names + "]");
  }

  // ---- sizes -------------------------------------------------------------------------------

  // (in + 2·pad - k) / stride + 1, with the kernel / window no larger than the padded input.
  i64 conv_out(i64 in, i64 k, i64 stride, i64 pad, const char* what) const {
    if (pad > (std::numeric_limits<i64>::max() - in) / 2)
      value_error(std::string(what) + ": padding " + std::to_string(pad) + " is too large");
    if (in + 2 * pad < k)
      value_error(std::string(what) + " " + std::to_string(k) + " is larger than the padded input " +
                  std::to_string(in + 2 * pad));
    return (in + 2 * pad - k) / stride + 1;
  }

  // Checks that an array of this shape and dtype can exist (its byte size fits a ptrdiff_t) before allocating it.
  void fits(const char* name, const Shape& s, const py::dtype& d) const {
    for (i64 n : s)
      if (n == 0) return;
    i64 bytes = d.itemsize();
    for (i64 n : s)
      if (__builtin_mul_overflow(bytes, n, &bytes))
        value_error(std::string(name) + " of shape " + shape_str(s) + " would be too large to allocate");
  }
  Array empty(const char* name, const Shape& s, const py::dtype& d) const {
    fits(name, s, d);
    return A::empty(s, d);
  }

  // ---- the end of a call: allocate nothing more; run the kernel or return its arguments --------

  // outs: the kernel's outputs; ins: its array inputs; run(T{}) calls the kernel (with the GIL released),
  // returning void or the loss; scalars: the kernel's converted scalar arguments, for _contract.
  template <class Run, class... Scalars>
  py::object finish(const std::vector<Array>& outs, const std::vector<Array>& ins, Run&& run,
                    const Scalars&... scalars) const {
    if constexpr (!A::kRuns) {
      py::list kargs;
      for (const Array& a : outs) kargs.append(A::object(a));
      for (const Array& a : ins) kargs.append(A::object(a));
      (kargs.append(py::cast(scalars)), ...);
      return py::tuple(kargs);
    } else {
      const bool f32 = A::dtype(ins.front()).equal(py::dtype::of<float>());
      using R = decltype(run(float{}));
      py::list result;
      if constexpr (std::is_void_v<R>) {
        {
          py::gil_scoped_release nogil;
          f32 ? run(float{}) : run(double{});
        }
      } else {
        double value;
        {
          py::gil_scoped_release nogil;
          value = f32 ? run(float{}) : run(double{});
        }
        result.append(py::float_(value));
      }
      for (const Array& a : outs) result.append(A::object(a));
      if (result.size() == 0) return py::none();
      if (result.size() == 1) return result[0];
      return py::tuple(result);
    }
  }
};

template <class T, class A>
T* ptr(const typename A::Array& a) {
  return static_cast<T*>(A::data(a));
}
template <class T, class A>
T* ptr_or_null(const typename A::Array& a) {
  return A::size(a) ? static_cast<T*>(A::data(a)) : nullptr;
}

// ---- the ops -------------------------------------------------------------------------------
// Each op is a struct: its argument names (py::arg) and call(). Kernel calls sit inside the run lambdas,
// which _contract never instantiates (it links no kernels).

using O = const py::object&;
#define DN_P(a) ptr<T, A>(a)

template <class A>
struct gemm {
  static constexpr const char* args[] = {"a", "b", "trans_a", "trans_b"};
  static py::object call(O a_, O b_, O trans_a_, O trans_b_) {
    const Call<A> c("gemm");
    const auto a = c.in("a", a_, 2), b = c.in("b", b_, 2);
    c.same_dtype({{"a", &a}, {"b", &b}});
    const bool ta = c.boolean("trans_a", trans_a_), tb = c.boolean("trans_b", trans_b_);
    const i64 M = ta ? A::dim(a, 1) : A::dim(a, 0), K = ta ? A::dim(a, 0) : A::dim(a, 1);
    const i64 Kb = tb ? A::dim(b, 1) : A::dim(b, 0), N = tb ? A::dim(b, 0) : A::dim(b, 1);
    if (K != Kb)
      c.value_error("inner dimensions differ: op(a) is (" + std::to_string(M) + ", " + std::to_string(K) +
                    "), op(b) is (" + std::to_string(Kb) + ", " + std::to_string(N) + ") (a " + c.shape_of(a) +
                    ", b " + c.shape_of(b) + ", trans_a=" + (ta ? "True" : "False") +
                    ", trans_b=" + (tb ? "True" : "False") + ")");
    const auto out = c.empty("c", {M, N}, A::dtype(a));
    return c.finish({out}, {a, b}, [&](auto t) {
      using T = decltype(t);
      deepnum::gemm<T>(DN_P(out), DN_P(a), DN_P(b), ta, tb, M, N, K);
    }, ta, tb);
  }
};

template <class A>
std::pair<typename A::Array, typename A::Array> linear_args(const Call<A>& c, O x_, O w_) {
  auto x = c.in("x", x_, 2, "(N, n_in)"), w = c.in("w", w_, 2, "(n_in, n_out)");
  if (A::dim(x, 1) != A::dim(w, 0))
    c.value_error("x " + c.shape_of(x) + " has " + std::to_string(A::dim(x, 1)) + " features but w " + c.shape_of(w) +
                  " expects " + std::to_string(A::dim(w, 0)));
  return {x, w};
}

template <class A>
struct linear_forward {
  static constexpr const char* args[] = {"x", "w", "b"};
  static py::object call(O x_, O w_, O b_) {
    const Call<A> c("linear_forward");
    const auto xw = linear_args(c, x_, w_);
    const auto &x = xw.first, &w = xw.second;
    const auto b = c.in("b", b_, 1);
    c.same_dtype({{"x", &x}, {"w", &w}, {"b", &b}});
    const i64 N = A::dim(x, 0), n_in = A::dim(x, 1), n_out = A::dim(w, 1);
    if (A::dim(b, 0) != n_out) c.value_error("b must have shape " + shape_str({n_out}) + ", got " + c.shape_of(b));
    const auto y = c.empty("y", {N, n_out}, A::dtype(x));
    return c.finish({y}, {x, w, b}, [&](auto t) {
      using T = decltype(t);
      deepnum::linear_forward<T>(DN_P(y), DN_P(x), DN_P(w), DN_P(b), N, n_in, n_out);
    });
  }
};

template <class A>
struct linear_backward {
  static constexpr const char* args[] = {"dy", "x", "w", "need_dx"};
  static py::object call(O dy_, O x_, O w_, O need_dx_) {
    const Call<A> c("linear_backward");
    const auto xw = linear_args(c, x_, w_);
    const auto &x = xw.first, &w = xw.second;
    const auto dy = c.in("dy", dy_, 2);
    c.same_dtype({{"dy", &dy}, {"x", &x}, {"w", &w}});
    const i64 N = A::dim(x, 0), n_in = A::dim(x, 1), n_out = A::dim(w, 1);
    if (c.shape(dy) != Shape{N, n_out})
      c.value_error("dy must have shape " + shape_str({N, n_out}) + ", got " + c.shape_of(dy));
    const bool need_dx = c.boolean("need_dx", need_dx_);
    const py::dtype d = A::dtype(x);
    const auto dx = c.empty("dx", need_dx ? Shape{N, n_in} : Shape{0, 0}, d);
    const auto dw = c.empty("dw", {n_in, n_out}, d), db = c.empty("db", {n_out}, d);
    return c.finish({dx, dw, db}, {dy, x, w}, [&](auto t) {
      using T = decltype(t);
      deepnum::linear_backward<T>(ptr_or_null<T, A>(dx), DN_P(dw), DN_P(db), DN_P(dy), DN_P(x), DN_P(w), N, n_in,
                                  n_out);
    });
  }
};

// A sequence (list or tuple, not a str) of arrays or names.
template <class A>
py::sequence sequence(const Call<A>& c, const char* name, O v, const char* of) {
  if (!PyList_Check(v.ptr()) && !PyTuple_Check(v.ptr()))
    c.type_error(std::string(name) + " must be a list or tuple of " + of + ", got " + type_name(v));
  return py::reinterpret_borrow<py::sequence>(v);
}

template <class A>
struct mlp_train_step {
  static constexpr const char* args[] = {"ws", "bs", "activations", "x", "labels", "lr", "weight_decay", "alpha"};
  static py::object call(O ws_, O bs_, O acts_, O x_, O labels_, O lr_, O wd_, O alpha_) {
    using Array = typename A::Array;
    const Call<A> c("mlp_train_step");
    const auto x = c.in("x", x_, 2, "(N, n_in)");
    const py::sequence wl = sequence(c, "ws", ws_, "arrays"), bl = sequence(c, "bs", bs_, "arrays"),
                       al = sequence(c, "activations", acts_, "names");
    const size_t layers = wl.size();
    if (layers == 0 || bl.size() != layers || al.size() != layers)
      c.value_error("ws, bs and activations need one entry per layer (at least one), got " + std::to_string(layers) +
                    ", " + std::to_string(bl.size()) + " and " + std::to_string(al.size()));
    std::vector<Array> ws, bs;
    std::vector<int> codes;
    std::vector<i64> sizes{A::dim(x, 1)};
    for (size_t l = 0; l < layers; ++l) {
      const std::string wn = "ws[" + std::to_string(l) + "]", bn = "bs[" + std::to_string(l) + "]";
      const Array w = c.in_place(wn.c_str(), wl[l]), b = c.in_place(bn.c_str(), bl[l]);
      const i64 n = sizes.back();
      if (A::ndim(w) != 2 || A::dim(w, 0) != n)
        c.value_error(wn + " must be (" + std::to_string(n) + ", n_out) to follow the previous layer, got " + c.shape_of(w));
      if (c.shape(b) != Shape{A::dim(w, 1)})
        c.value_error(bn + " must have shape " + shape_str({A::dim(w, 1)}) + ", got " + c.shape_of(b));
      if (!A::dtype(w).equal(A::dtype(x)) || !A::dtype(b).equal(A::dtype(x)))
        c.type_error("all arrays must share one dtype, got x " + dtype_str(A::dtype(x)) + ", " + wn + " " +
                     dtype_str(A::dtype(w)) + ", " + bn + " " + dtype_str(A::dtype(b)));
      if (A::dim(w, 1) == 0) c.value_error(wn + " is empty, shape " + c.shape_of(w));
      codes.push_back(c.activation(("activations[" + std::to_string(l) + "]").c_str(), al[l]));
      ws.push_back(w);
      bs.push_back(b);
      sizes.push_back(A::dim(w, 1));
    }
    const i64 N = A::dim(x, 0);
    const auto labels = c.index("labels", labels_, {N});
    const double lr = c.real("lr", lr_, 0.0), wd = c.real("weight_decay", wd_, 0.0), alpha = c.real("alpha", alpha_, 0.0);
    if constexpr (!A::kRuns) {
      if constexpr (A::kHost) check_labels(c.op, ptr<const i64, A>(labels), N, sizes.back());
      py::list pw, pb;
      for (size_t l = 0; l < layers; ++l) {
        pw.append(A::object(ws[l]));
        pb.append(A::object(bs[l]));
      }
      return py::make_tuple(pw, pb, py::cast(codes), A::object(x), A::object(labels), lr, wd, alpha);
    } else {
      return c.finish({}, {x, labels}, [&](auto t) {
        using T = decltype(t);
        std::vector<T*> pw(layers), pb(layers);
        for (size_t l = 0; l < layers; ++l) {
          pw[l] = DN_P(ws[l]);
          pb[l] = DN_P(bs[l]);
        }
        return deepnum::mlp_train_step<T>(pw.data(), pb.data(), codes.data(), sizes.data(),
                                          static_cast<i64>(layers), DN_P(x), ptr<const i64, A>(labels), N, lr, wd,
                                          alpha);
      });
    }
  }
};

template <class A>
struct Conv {
  typename A::Array x, w;
  i64 N, C, H, W, K, R, S, sh, sw, ph, pw, P, Q;
};

template <class A>
Conv<A> conv_args(const Call<A>& c, O x_, O w_, O stride, O padding) {
  const auto x = c.in("x", x_, 4, "(N, C, H, W)"), w = c.in("w", w_, 4, "(K, C, R, S)");
  const auto [sh, sw] = c.pair("stride", stride, 1);
  const auto [ph, pw] = c.pair("padding", padding, 0);
  if (A::dim(x, 1) != A::dim(w, 1))
    c.value_error("x " + c.shape_of(x) + " has " + std::to_string(A::dim(x, 1)) + " channels but w " + c.shape_of(w) +
                  " expects " + std::to_string(A::dim(w, 1)));
  Conv<A> g{x, w, A::dim(x, 0), A::dim(x, 1), A::dim(x, 2), A::dim(x, 3), A::dim(w, 0), A::dim(w, 2), A::dim(w, 3),
            sh, sw, ph, pw, 0, 0};
  g.P = c.conv_out(g.H, g.R, sh, ph, "kernel height");
  g.Q = c.conv_out(g.W, g.S, sw, pw, "kernel width");
  return g;
}

template <class A>
struct conv2d_forward {
  static constexpr const char* args[] = {"x", "w", "b", "stride", "padding"};
  static py::object call(O x_, O w_, O b_, O stride, O padding) {
    const Call<A> c("conv2d_forward");
    const Conv<A> g = conv_args(c, x_, w_, stride, padding);
    const auto &x = g.x, &w = g.w;
    std::optional<typename A::Array> b;
    if (!b_.is_none()) {
      b = c.in("b", b_, 1);
      c.same_dtype({{"x", &x}, {"w", &w}, {"b", &*b}});
      if (A::dim(*b, 0) != g.K) c.value_error("b must have shape " + shape_str({g.K}) + ", got " + c.shape_of(*b));
    } else {
      c.same_dtype({{"x", &x}, {"w", &w}});
    }
    const py::dtype d = A::dtype(x);
    c.fits("y", {g.N, g.K, g.P, g.Q}, d);
    const auto bias = b ? *b : A::zeros({g.K}, d);
    const auto y = c.empty("y", {g.N, g.K, g.P, g.Q}, d);
    return c.finish({y}, {x, w, bias}, [&](auto t) {
      using T = decltype(t);
      deepnum::conv2d_forward<T>(DN_P(y), DN_P(x), DN_P(w), DN_P(bias), g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.sh, g.sw,
                                 g.ph, g.pw);
    }, g.sh, g.sw, g.ph, g.pw);
  }
};

template <class A>
struct conv2d_backward {
  static constexpr const char* args[] = {"dy", "x", "w", "stride", "padding", "need_dx"};
  static py::object call(O dy_, O x_, O w_, O stride, O padding, O need_dx_) {
    const Call<A> c("conv2d_backward");
    const Conv<A> g = conv_args(c, x_, w_, stride, padding);
    const auto &x = g.x, &w = g.w;
    const auto dy = c.in("dy", dy_, 4);
    c.same_dtype({{"dy", &dy}, {"x", &x}, {"w", &w}});
    if (c.shape(dy) != Shape{g.N, g.K, g.P, g.Q})
      c.value_error("dy must have shape " + shape_str({g.N, g.K, g.P, g.Q}) + " for x " + c.shape_of(x) + " and w " +
                    c.shape_of(w) + ", got " + c.shape_of(dy));
    const bool need_dx = c.boolean("need_dx", need_dx_);
    const py::dtype d = A::dtype(x);
    const auto dx = c.empty("dx", need_dx ? c.shape(x) : Shape{0, 0, 0, 0}, d);
    const auto dw = c.empty("dw", c.shape(w), d), db = c.empty("db", {g.K}, d);
    return c.finish({dx, dw, db}, {dy, x, w}, [&](auto t) {
      using T = decltype(t);
      deepnum::conv2d_backward<T>(ptr_or_null<T, A>(dx), DN_P(dw), DN_P(db), DN_P(dy), DN_P(x), DN_P(w), g.N, g.C, g.H,
                                  g.W, g.K, g.R, g.S, g.sh, g.sw, g.ph, g.pw);
    }, g.sh, g.sw, g.ph, g.pw);
  }
};

template <class A>
struct max_pool2d_forward {
  static constexpr const char* args[] = {"x", "size", "stride"};
  static py::object call(O x_, O size, O stride) {
    const Call<A> c("max_pool2d_forward");
    const auto x = c.in("x", x_, 4, "(N, C, H, W)");
    const auto ksize = c.pair("size", size, 1);
    const auto kstride = stride.is_none() ? ksize : c.pair("stride", stride, 1);
    const i64 kh = ksize.first, kw = ksize.second, sh = kstride.first, sw = kstride.second;
    const i64 N = A::dim(x, 0), C = A::dim(x, 1), H = A::dim(x, 2), W = A::dim(x, 3);
    const Shape s{N, C, c.conv_out(H, kh, sh, 0, "window height"), c.conv_out(W, kw, sw, 0, "window width")};
    c.fits("y", s, A::dtype(x));
    c.fits("argmax", s, py::dtype::of<i64>());  // both before either is allocated
    const auto y = c.empty("y", s, A::dtype(x));
    const auto argmax = c.empty("argmax", s, py::dtype::of<i64>());
    return c.finish({y, argmax}, {x}, [&](auto t) {
      using T = decltype(t);
      deepnum::max_pool2d_forward<T>(DN_P(y), ptr<i64, A>(argmax), DN_P(x), N, C, H, W, kh, kw, sh, sw);
    }, kh, kw, sh, sw);
  }
};

template <class A>
struct max_pool2d_backward {
  static constexpr const char* args[] = {"dy", "argmax", "x_shape"};
  static py::object call(O dy_, O argmax_, O x_shape_) {
    const Call<A> c("max_pool2d_backward");
    const auto dy = c.in("dy", dy_, 4);
    if (!PyList_Check(x_shape_.ptr()) && !PyTuple_Check(x_shape_.ptr()))
      c.type_error("x_shape must be a tuple or list of ints, got " + type_name(x_shape_));
    Shape xs;
    for (const auto& s : py::reinterpret_borrow<py::sequence>(x_shape_)) xs.push_back(c.integer("x_shape", s, 1));
    if (xs.size() != 4 || xs[0] != A::dim(dy, 0) || xs[1] != A::dim(dy, 1))
      c.value_error("x_shape " + shape_str(xs) + " must be (N, C, H, W) with N, C matching dy " + c.shape_of(dy));
    const auto argmax = c.index("argmax", argmax_, c.shape(dy), "dy");
    const i64 N = xs[0], C = xs[1], H = xs[2], W = xs[3], P = A::dim(dy, 2), Q = A::dim(dy, 3);
    i64 plane = 0;
    if (__builtin_mul_overflow(H, W, &plane)) c.value_error("dx of shape " + shape_str(xs) + " would be too large to allocate");
    c.fits("dx", xs, A::dtype(dy));
    if constexpr (!A::kRuns) check_argmax(c.op, ptr<const i64, A>(argmax), A::size(argmax), plane);
    const auto dx = c.empty("dx", xs, A::dtype(dy));
    return c.finish({dx}, {dy, argmax}, [&](auto t) {
      using T = decltype(t);
      deepnum::max_pool2d_backward<T>(DN_P(dx), DN_P(dy), ptr<const i64, A>(argmax), N, C, H, W, P, Q);
    });
  }
};

template <class A>
struct softmax_nll_forward {
  static constexpr const char* args[] = {"logits", "labels"};
  static py::object call(O logits_, O labels_) {
    const Call<A> c("softmax_nll_forward");
    const auto logits = c.in("logits", logits_, 2, "(N, n_classes)");
    const i64 N = A::dim(logits, 0), n = A::dim(logits, 1);
    const auto labels = c.index("labels", labels_, {N});
    if constexpr (!A::kRuns) check_labels(c.op, ptr<const i64, A>(labels), N, n);
    const auto probs = c.empty("probs", {N, n}, A::dtype(logits));
    return c.finish({probs}, {logits, labels}, [&](auto t) {
      using T = decltype(t);
      return deepnum::softmax_nll_forward<T>(DN_P(probs), DN_P(logits), ptr<const i64, A>(labels), N, n);
    });
  }
};

template <class A>
struct softmax_nll_backward {
  static constexpr const char* args[] = {"probs", "labels"};
  static py::object call(O probs_, O labels_) {
    const Call<A> c("softmax_nll_backward");
    const auto probs = c.in("probs", probs_, 2, "(N, n_classes)");
    const i64 N = A::dim(probs, 0), n = A::dim(probs, 1);
    const auto labels = c.index("labels", labels_, {N});
    if constexpr (!A::kRuns) check_labels(c.op, ptr<const i64, A>(labels), N, n);
    const auto dlogits = c.empty("dlogits", {N, n}, A::dtype(probs));
    return c.finish({dlogits}, {probs, labels}, [&](auto t) {
      using T = decltype(t);
      deepnum::softmax_nll_backward<T>(DN_P(dlogits), DN_P(probs), ptr<const i64, A>(labels), N, n);
    });
  }
};

template <class A>
struct activation_forward {
  static constexpr const char* args[] = {"x", "name", "alpha"};
  static py::object call(O x_, O name, O alpha_) {
    const Call<A> c("activation_forward");
    const int act = c.activation("name", name);
    const double alpha = c.real("alpha", alpha_, 0.0);
    const auto x = c.in("x", x_);
    const auto y = c.empty("y", c.shape(x), A::dtype(x));
    return c.finish({y}, {x}, [&](auto t) {
      using T = decltype(t);
      deepnum::activation_forward<T>(DN_P(y), DN_P(x), act, alpha, A::size(x));
    }, act, alpha);
  }
};

template <class A>
struct activation_backward {
  static constexpr const char* args[] = {"y", "dy", "name", "alpha"};
  static py::object call(O y_, O dy_, O name, O alpha_) {
    const Call<A> c("activation_backward");
    const int act = c.activation("name", name);
    const double alpha = c.real("alpha", alpha_, 0.0);
    const auto y = c.in("y", y_), dy = c.in("dy", dy_);
    c.same_dtype({{"y", &y}, {"dy", &dy}});
    c.same_shape("dy", dy, "y", y);
    const auto dx = c.empty("dx", c.shape(y), A::dtype(y));
    return c.finish({dx}, {y, dy}, [&](auto t) {
      using T = decltype(t);
      deepnum::activation_backward<T>(DN_P(dx), DN_P(y), DN_P(dy), act, alpha, A::size(y));
    }, act, alpha);
  }
};

template <class A>
struct dropout_forward {
  static constexpr const char* args[] = {"x", "p", "seed"};
  static py::object call(O x_, O p_, O seed_) {
    const Call<A> c("dropout_forward");
    const auto x = c.in("x", x_);
    const double p = c.real("p", p_, 0.0, 1.0, true);
    const std::uint64_t seed = c.seed("seed", seed_);
    const auto y = c.empty("y", c.shape(x), A::dtype(x)), mask = c.empty("mask", c.shape(x), A::dtype(x));
    return c.finish({y, mask}, {x}, [&](auto t) {
      using T = decltype(t);
      deepnum::dropout_forward<T>(DN_P(y), DN_P(mask), DN_P(x), p, seed, A::size(x));
    }, p, seed);
  }
};

template <class A>
struct dropout_backward {
  static constexpr const char* args[] = {"dy", "mask"};
  static py::object call(O dy_, O mask_) {
    const Call<A> c("dropout_backward");
    const auto dy = c.in("dy", dy_), mask = c.in("mask", mask_);
    c.same_dtype({{"dy", &dy}, {"mask", &mask}});
    c.same_shape("dy", dy, "mask", mask);
    const auto dx = c.empty("dx", c.shape(dy), A::dtype(dy));
    return c.finish({dx}, {dy, mask}, [&](auto t) {
      using T = decltype(t);
      deepnum::dropout_backward<T>(DN_P(dx), DN_P(dy), DN_P(mask), A::size(dy));
    });
  }
};

template <class A>
struct sgd_update {
  static constexpr const char* args[] = {"param", "velocity", "grad", "lr", "momentum", "nesterov", "weight_decay"};
  static py::object call(O param_, O velocity_, O grad_, O lr_, O momentum_, O nesterov_, O wd_) {
    const Call<A> c("sgd_update");
    const auto param = c.in_place("param", param_);
    const auto grad = c.in("grad", grad_);
    const double lr = c.real("lr", lr_, 0.0), momentum = c.real("momentum", momentum_, 0.0);
    const bool nesterov = c.boolean("nesterov", nesterov_);
    const double wd = c.real("weight_decay", wd_, 0.0);
    std::optional<typename A::Array> velocity;
    if (velocity_.is_none()) {
      if (momentum > 0 || nesterov)
        c.value_error("momentum=" + real_str(momentum) + ", nesterov=" + (nesterov ? "True" : "False") +
                      " need a velocity array");
    } else {
      velocity = c.in_place("velocity", velocity_);
      c.same_shape("velocity", *velocity, "param", param);
    }
    if (nesterov && momentum == 0) c.value_error("nesterov needs momentum > 0");
    if (velocity) c.same_dtype({{"param", &param}, {"grad", &grad}, {"velocity", &*velocity}});
    else c.same_dtype({{"param", &param}, {"grad", &grad}});
    c.same_shape("grad", grad, "param", param);
    const auto v = velocity ? *velocity : c.empty("velocity", {0}, A::dtype(param));
    return c.finish({}, {param, v, grad}, [&](auto t) {
      using T = decltype(t);
      deepnum::sgd_update<T>(DN_P(param), ptr_or_null<T, A>(v), DN_P(grad), lr, momentum, nesterov, wd, A::size(param));
    }, lr, momentum, nesterov, wd);
  }
};

template <class A>
struct adam_update {
  static constexpr const char* args[] = {"param", "m", "v", "grad", "lr", "beta1", "beta2", "eps", "weight_decay", "step"};
  static py::object call(O param_, O m_, O v_, O grad_, O lr_, O beta1_, O beta2_, O eps_, O wd_, O step_) {
    const Call<A> c("adam_update");
    const auto param = c.in_place("param", param_), m = c.in_place("m", m_), v = c.in_place("v", v_);
    const auto grad = c.in("grad", grad_);
    const i64 step = c.integer("step", step_, 1);
    const double lr = c.real("lr", lr_, 0.0), beta1 = c.real("beta1", beta1_, 0.0, 1.0, true),
                 beta2 = c.real("beta2", beta2_, 0.0, 1.0, true), eps = c.real("eps", eps_, 0.0);
    if (eps == 0) c.value_error("eps must be > 0");
    const double wd = c.real("weight_decay", wd_, 0.0);
    c.same_dtype({{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
    c.same_shape("grad", grad, "param", param);
    c.same_shape("m", m, "param", param);
    c.same_shape("v", v, "param", param);
    return c.finish({}, {param, m, v, grad}, [&](auto t) {
      using T = decltype(t);
      deepnum::adam_update<T>(DN_P(param), DN_P(m), DN_P(v), DN_P(grad), lr, beta1, beta2, eps, wd, step,
                              A::size(param));
    }, lr, beta1, beta2, eps, wd, step);
  }
};

template <class A>
struct Rnn {
  typename A::Array x, h0, w_xh, w_hh;
  int act;
  i64 T, N, D, H;
};

template <class A>
Rnn<A> rnn_args(const Call<A>& c, O x_, O h0_, O w_xh_, O w_hh_, O activation) {
  const int act = c.activation("activation", activation, true);
  const auto x = c.in("x", x_, 3, "(T, N, D)"), h0 = c.in("h0", h0_, 2, "(N, H)");
  const auto w_xh = c.in("w_xh", w_xh_, 2, "(D, H)"), w_hh = c.in("w_hh", w_hh_, 2, "(H, H)");
  const i64 N = A::dim(x, 1), D = A::dim(x, 2), H = A::dim(w_xh, 1);
  if (A::dim(w_xh, 0) != D)
    c.value_error("x " + c.shape_of(x) + " has " + std::to_string(D) + " features but w_xh " + c.shape_of(w_xh) +
                  " expects " + std::to_string(A::dim(w_xh, 0)));
  if (c.shape(w_hh) != Shape{H, H})
    c.value_error("w_hh must have shape " + shape_str({H, H}) + " for w_xh " + c.shape_of(w_xh) + ", got " +
                  c.shape_of(w_hh));
  if (c.shape(h0) != Shape{N, H})
    c.value_error("h0 must have shape " + shape_str({N, H}) + " for x " + c.shape_of(x) + " and w_xh " +
                  c.shape_of(w_xh) + ", got " + c.shape_of(h0));
  return {x, h0, w_xh, w_hh, act, A::dim(x, 0), N, D, H};
}

template <class A>
struct rnn_forward {
  static constexpr const char* args[] = {"x", "h0", "w_xh", "w_hh", "b_h", "activation"};
  static py::object call(O x_, O h0_, O w_xh_, O w_hh_, O b_h_, O activation) {
    const Call<A> c("rnn_forward");
    const Rnn<A> r = rnn_args(c, x_, h0_, w_xh_, w_hh_, activation);
    const auto &x = r.x, &h0 = r.h0, &w_xh = r.w_xh, &w_hh = r.w_hh;
    const auto b_h = c.in("b_h", b_h_, 1);
    c.same_dtype({{"x", &x}, {"h0", &h0}, {"w_xh", &w_xh}, {"w_hh", &w_hh}, {"b_h", &b_h}});
    if (A::dim(b_h, 0) != r.H) c.value_error("b_h must have shape " + shape_str({r.H}) + ", got " + c.shape_of(b_h));
    const auto h_all = c.empty("h_all", {r.T, r.N, r.H}, A::dtype(x));
    return c.finish({h_all}, {x, h0, w_xh, w_hh, b_h}, [&](auto t) {
      using T = decltype(t);
      deepnum::rnn_forward<T>(DN_P(h_all), DN_P(x), DN_P(h0), DN_P(w_xh), DN_P(w_hh), DN_P(b_h), r.T, r.N, r.D, r.H,
                              r.act);
    }, r.act);
  }
};

template <class A>
struct rnn_backward {
  static constexpr const char* args[] = {"h_all", "dh_all", "x", "h0", "w_xh", "w_hh", "activation", "bptt_steps", "clip"};
  static py::object call(O h_all_, O dh_all_, O x_, O h0_, O w_xh_, O w_hh_, O activation, O bptt_, O clip_) {
    const Call<A> c("rnn_backward");
    const Rnn<A> r = rnn_args(c, x_, h0_, w_xh_, w_hh_, activation);
    const auto &x = r.x, &h0 = r.h0, &w_xh = r.w_xh, &w_hh = r.w_hh;
    const auto h_all = c.in("h_all", h_all_, 3, "(T, N, H)"), dh_all = c.in("dh_all", dh_all_, 3, "(T, N, H)");
    c.same_dtype({{"h_all", &h_all}, {"dh_all", &dh_all}, {"x", &x}, {"h0", &h0}, {"w_xh", &w_xh}, {"w_hh", &w_hh}});
    for (const auto& [name, a] : {std::pair{"h_all", &h_all}, std::pair{"dh_all", &dh_all}})
      if (c.shape(*a) != Shape{r.T, r.N, r.H})
        c.value_error(std::string(name) + " must have shape " + shape_str({r.T, r.N, r.H}) + " for x " + c.shape_of(x) +
                      " and w_xh " + c.shape_of(w_xh) + ", got " + c.shape_of(*a));
    i64 bptt = bptt_.is_none() ? 0 : c.integer("bptt_steps", bptt_, 0);
    if (bptt >= r.T) bptt = 0;  // k >= T is full BPTT
    double clip = 0.0;
    if (!clip_.is_none()) {
      clip = c.real("clip", clip_, 0.0);
      if (clip == 0) c.value_error("clip must be > 0 (or None for no clipping), got " + real_str(clip));
    }
    const py::dtype d = A::dtype(x);
    const auto dx = c.empty("dx", c.shape(x), d), dh0 = c.empty("dh0", c.shape(h0), d);
    const auto dw_xh = c.empty("dw_xh", c.shape(w_xh), d), dw_hh = c.empty("dw_hh", c.shape(w_hh), d);
    const auto db_h = c.empty("db_h", {r.H}, d);
    return c.finish({dx, dh0, dw_xh, dw_hh, db_h}, {h_all, dh_all, x, h0, w_xh, w_hh}, [&](auto t) {
      using T = decltype(t);
      deepnum::rnn_backward<T>(DN_P(dx), DN_P(dh0), DN_P(dw_xh), DN_P(dw_hh), DN_P(db_h), DN_P(h_all), DN_P(dh_all),
                               DN_P(x), DN_P(h0), DN_P(w_xh), DN_P(w_hh), r.T, r.N, r.D, r.H, r.act, bptt, clip);
    }, r.act, bptt, clip);
  }
};

#undef DN_P

// ---- the module table ----------------------------------------------------------------------

template <class R, class... Args, size_t N, size_t... I>
void def(py::module_& m, const char* name, R (*f)(Args...), const char* const (&names)[N], std::index_sequence<I...>) {
  static_assert(sizeof...(Args) == N, "one argument name per argument");
  m.def(name, f, py::arg(names[I])...);
}

// An adapter's argument checks without its kernels: the op returns its arguments, converted, and runs nothing.
// For the ops a device backend composes in Python (mlp_train_step): their sub-ops check the data ranges.
template <class A>
struct ChecksOnly : A {
  static constexpr bool kRuns = false;
};

// Binds every op and exports OPS {name: number of outputs}, RETURNS_LOSS (the ops whose kernel returns the loss,
// which comes first), ACTIVATIONS and RNN_ACTIVATIONS. An op without a device kernel is bound on the device as
// check_<op> only (its argument checks), and is not in the device module's OPS.
template <class A>
void bind_ops(py::module_& m) {
  py::dict ops;
  py::list returns_loss;
#define DEEPNUM_BIND(name, n_outputs, returns, on_device)                                                       \
  if constexpr (on_device || A::kHost) {                                                                        \
    def(m, #name, &name<A>::call, name<A>::args, std::make_index_sequence<std::size(name<A>::args)>{});       \
    ops[#name] = n_outputs;                                                                                     \
    if (returns) returns_loss.append(#name);                                                                    \
  } else {                                                                                                      \
    def(m, "check_" #name, &name<ChecksOnly<A>>::call, name<A>::args,                                           \
        std::make_index_sequence<std::size(name<A>::args)>{});                                                  \
  }
  DEEPNUM_OPS(DEEPNUM_BIND)
#undef DEEPNUM_BIND
  m.attr("OPS") = ops;
  m.attr("RETURNS_LOSS") = py::tuple(returns_loss);
  py::dict acts;
  py::list rnn;
  for (const auto& a : kActivations) {
    acts[a.name] = a.code;
    if (a.rnn) rnn.append(a.name);
  }
  m.attr("ACTIVATIONS") = acts;
  m.attr("RNN_ACTIVATIONS") = py::tuple(rnn);
}

}  // namespace contract
}  // namespace deepnum
