// deepnum._cuda: the ops of cpp/contract.h on DeviceArrays, running the CUDA kernels (cuda/*.cu, declared in
// cpp/kernels.h like the CPU ones), compiled by the host compiler. The argument rules, their messages and the op
// table are contract.h's (mlp_train_step is not bound here: deepnum.cuda composes it from the other ops).
//
// DeviceArray: a C-contiguous n-d array in device memory: a Buffer (cudaMalloc / RAII cudaFree, shared by the
// handles and views of one allocation) and a byte offset into it, a shape and a numpy dtype; from_numpy /
// to_numpy, copy, __cuda_array_interface__, and two views that copy nothing: rows(start, stop) and reshape(shape).
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

#include <cmath>
#include <memory>
#include <string>
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
#include "elementwise.h"

namespace py = pybind11;
namespace dc = deepnum::cuda;
namespace ew = deepnum::ew;
using deepnum::i64;
using deepnum::contract::shape_str;

namespace {

// ---- DeviceArray -------------------------------------------------------------------------

struct DeviceArray {
  std::shared_ptr<dc::Buffer> buf;  // nullptr: a _spec array, no memory
  std::size_t offset = 0;           // bytes from the start of buf (views)
  std::vector<i64> shape;
  py::dtype dtype;

  // spec: no memory (for the argument checks only)
  DeviceArray(std::vector<i64> shape_, py::dtype dtype_, bool spec = false)
      : shape(std::move(shape_)), dtype(std::move(dtype_)) {
    const char kind = dtype.kind();
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b' && kind != 'c')
      throw py::type_error("DeviceArray: dtype must be numeric or bool, got " + py::str(dtype).cast<std::string>());
    i64 bytes = dtype.itemsize();
    for (i64 s : shape) {
      if (s < 0) throw std::invalid_argument("DeviceArray: negative dimension in shape " + shape_str(shape));
      if (s && bytes && __builtin_mul_overflow(bytes, s, &bytes))
        throw std::invalid_argument("DeviceArray: shape " + shape_str(shape) + " is too large");
    }
    if (!spec) buf = std::make_shared<dc::Buffer>(nbytes());
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
  // The device address of the first element; a _spec array has none (a RuntimeError, never a null pointer).
  void* ptr() const {
    if (!buf)
      throw std::runtime_error("DeviceArray: this array holds no memory (made by _spec for argument checks only)");
    return static_cast<char*>(buf->data()) + offset;
  }
  py::array to_numpy() const {
    void* src = ptr();
    py::array out(dtype, std::vector<py::ssize_t>(shape.begin(), shape.end()));
    dc::copy_to_host(out.mutable_data(), src, nbytes());
    return out;
  }
  static DeviceArray from_numpy(const py::handle& obj) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error("DeviceArray.from_numpy: expected a numpy.ndarray, got " +
                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    const auto a = py::array::ensure(obj, py::array::c_style);  // a C-ordered copy when needed
    DeviceArray d(std::vector<i64>(a.shape(), a.shape() + a.ndim()), a.dtype());
    dc::copy_to_device(d.ptr(), a.data(), d.nbytes());
    return d;
  }
  DeviceArray copy() const {
    const void* src = ptr();
    DeviceArray d(shape, dtype);
    dc::copy_on_device(d.ptr(), src, nbytes());
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
    DeviceArray v = *this;
    v.shape = std::move(to);
    return v;
  }
};

std::vector<i64> shape_arg(const py::handle& s) {
  if (py::isinstance<py::int_>(s)) return {s.cast<i64>()};
  return s.cast<std::vector<i64>>();
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
    DeviceArray a(shape, d);
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

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "deepnum CUDA kernels on device arrays. Use deepnum.ops with the 'cuda' backend, not this module.";
  using py::arg;

  py::class_<DeviceArray>(m, "DeviceArray", "A C-contiguous array in CUDA device memory (freed with its last handle).")
      .def_static("empty", [](const py::handle& shape, const py::object& dtype) {
            return DeviceArray(shape_arg(shape), py::dtype::from_args(dtype));
          }, arg("shape"), arg("dtype") = py::dtype::of<float>(), "Uninitialised device array.")
      .def_static("zeros", [](const py::handle& shape, const py::object& dtype) {
            DeviceArray d(shape_arg(shape), py::dtype::from_args(dtype));
            dc::fill_zero(d.ptr(), d.nbytes());
            return d;
          }, arg("shape"), arg("dtype") = py::dtype::of<float>(), "Device array of zeros.")
      .def_static("from_numpy", &DeviceArray::from_numpy, arg("a"), "Copy a numpy array to the device (C order).")
      .def("to_numpy", &DeviceArray::to_numpy, "Copy to a new numpy array on the host.")
      .def("numpy", &DeviceArray::to_numpy, "Copy to a new numpy array on the host.")
      .def("copy", &DeviceArray::copy, "A new device array with the same contents (device-to-device copy).")
      .def("rows", &DeviceArray::rows, arg("start"), arg("stop"),
           "Rows [start, stop) of the first axis: a view sharing this array's memory (no copy).")
      .def("reshape", [](const DeviceArray& a, const py::handle& shape) { return a.reshape(shape_arg(shape)); },
           arg("shape"), "The same elements in another shape (one -1 allowed): a view sharing this array's memory.")
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

  m.def("_spec", [](const py::handle& shape, const py::object& dtype) {
        return DeviceArray(shape_arg(shape), py::dtype::from_args(dtype), /*spec=*/true);
      }, arg("shape"), arg("dtype") = py::dtype::of<float>(),
      "A DeviceArray that holds no memory, for testing the argument checks without a GPU (kernels and copies "
      "on it raise RuntimeError).");
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
}
