"""
deepnum CUDA kernels on device arrays. Use deepnum.ops with the 'cuda' backend, not this module.
"""
from __future__ import annotations
import numpy
import numpy as _numpy
import numpy.typing
import typing
__all__: list[str] = ['ACTIVATIONS', 'DeviceArray', 'EMULATED', 'OPS', 'RETURNS_LOSS', 'RNN_ACTIVATIONS', 'activation_backward', 'activation_forward', 'adam_update', 'add_l1', 'argmax', 'check_mlp_train_step', 'concat', 'conv2d_backward', 'conv2d_forward', 'count_unequal', 'device_count', 'device_name', 'device_status', 'dropout_backward', 'dropout_forward', 'gemm', 'last_step', 'linear_backward', 'linear_forward', 'max_pool2d_backward', 'max_pool2d_forward', 'positive', 'rnn_backward', 'rnn_forward', 'sgd_update', 'sigmoid_bce', 'sigmoid_bce_grad', 'softmax', 'softmax_nll_backward', 'softmax_nll_forward', 'swap01', 'synchronize', 'take_rows']
class DeviceArray:
    """
    A C-contiguous array in CUDA device memory (freed with its last handle).
    """
    @staticmethod
    def empty(shape: typing.Any, dtype: typing.Any = ...) -> DeviceArray:
        """
        Uninitialised device array.
        """
    @staticmethod
    def from_numpy(a: typing.Any) -> DeviceArray:
        """
        Copy a numpy array to the device (C order).
        """
    @staticmethod
    def zeros(shape: typing.Any, dtype: typing.Any = ...) -> DeviceArray:
        """
        Device array of zeros.
        """
    def __dlpack__(self, *, stream: typing.Any = None, max_version: typing.Any = None, dl_device: typing.Any = None, copy: typing.Any = None) -> typing.Any:
        """
        A DLPack capsule of this array (no copy unless copy=True): 'dltensor_versioned' (DLPack 1.1) when max_version >= (1, 0), the legacy 'dltensor' otherwise. stream (CUDA, as the array API standard): None or 1 the legacy default stream deepnum runs on, 2 the per-thread default stream, a larger int a cudaStream_t, which then waits for the work queued here; -1 no synchronisation.
        """
    def __dlpack_device__(self) -> tuple[int, int]:
        """
        (2, device id): DLPack's kDLCUDA and the CUDA device the memory is on.
        """
    def __len__(self) -> int:
        ...
    def __repr__(self) -> str:
        ...
    def copy(self) -> DeviceArray:
        """
        A new device array with the same contents (device-to-device copy).
        """
    def numpy(self) -> _numpy.ndarray:
        """
        Copy to a new numpy array on the host.
        """
    def reshape(self, shape: typing.Any) -> DeviceArray:
        """
        The same elements in another shape (one -1 allowed): a view sharing this array's memory.
        """
    def rows(self, start: typing.SupportsInt | typing.SupportsIndex, stop: typing.SupportsInt | typing.SupportsIndex) -> DeviceArray:
        """
        Rows [start, stop) of the first axis: a view sharing this array's memory (no copy).
        """
    def to_numpy(self) -> _numpy.ndarray:
        """
        Copy to a new numpy array on the host.
        """
    @property
    def __cuda_array_interface__(self) -> dict:
        ...
    @property
    def dtype(self) -> _numpy.dtype[typing.Any]:
        """
        The _numpy.dtype of the elements.
        """
    @property
    def nbytes(self) -> int:
        """
        The size of the data in bytes.
        """
    @property
    def ndim(self) -> int:
        """
        The number of dimensions.
        """
    @property
    def shape(self) -> tuple:
        """
        The shape, a tuple of ints.
        """
    @property
    def size(self) -> int:
        """
        The number of elements.
        """
def _from_dlpack(capsule: typing.Any) -> DeviceArray:
    """
    The DeviceArray over a DLPack capsule's CUDA tensor, sharing its memory (deepnum.cuda.from_dlpack calls the producer's __dlpack__ and then this).
    """
def _host_activation_backward(y: numpy.ndarray, dy: numpy.ndarray, act: typing.SupportsInt | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex) -> numpy.ndarray:
    ...
def _host_activation_forward(x: numpy.ndarray, act: typing.SupportsInt | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex) -> numpy.ndarray:
    ...
def _host_adam_update(param: numpy.ndarray, m: numpy.ndarray, v: numpy.ndarray, grad: numpy.ndarray, lr: typing.SupportsFloat | typing.SupportsIndex, beta1: typing.SupportsFloat | typing.SupportsIndex, beta2: typing.SupportsFloat | typing.SupportsIndex, eps: typing.SupportsFloat | typing.SupportsIndex, weight_decay: typing.SupportsFloat | typing.SupportsIndex, step: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def _host_dropout_mask(x: numpy.ndarray, p: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex) -> numpy.ndarray:
    ...
def _host_dropout_uniform(seed: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex) -> numpy.ndarray:
    ...
def _host_sgd_update(param: numpy.ndarray, velocity: typing.Any, grad: numpy.ndarray, lr: typing.SupportsFloat | typing.SupportsIndex, momentum: typing.SupportsFloat | typing.SupportsIndex, nesterov: bool, weight_decay: typing.SupportsFloat | typing.SupportsIndex) -> None:
    ...
def _host_softmax_nll_forward(logits: numpy.ndarray, labels: typing.Annotated[numpy.typing.ArrayLike, numpy.int64]) -> tuple:
    ...
def _spec(shape: typing.Any, dtype: typing.Any = ...) -> DeviceArray:
    """
    A DeviceArray that holds no memory, for testing the argument checks without a GPU (kernels and copies on it raise RuntimeError).
    """
def activation_backward(y: typing.Any, dy: typing.Any, name: typing.Any, alpha: typing.Any) -> typing.Any:
    ...
def activation_forward(x: typing.Any, name: typing.Any, alpha: typing.Any) -> typing.Any:
    ...
def adam_update(param: typing.Any, m: typing.Any, v: typing.Any, grad: typing.Any, lr: typing.Any, beta1: typing.Any, beta2: typing.Any, eps: typing.Any, weight_decay: typing.Any, step: typing.Any) -> typing.Any:
    ...
def add_l1(g: typing.Any, p: typing.Any, l1: typing.SupportsFloat | typing.SupportsIndex) -> DeviceArray:
    """
    g + l1 * sign(p), a new array.
    """
def argmax(a: typing.Any) -> DeviceArray:
    """
    Index of the largest entry along the last axis, int64 (the first; NaN wins).
    """
def check_mlp_train_step(ws: typing.Any, bs: typing.Any, activations: typing.Any, x: typing.Any, labels: typing.Any, lr: typing.Any, weight_decay: typing.Any, alpha: typing.Any) -> typing.Any:
    ...
def concat(arrays: typing.Any) -> DeviceArray:
    """
    The arrays joined along the first axis (device-to-device copies).
    """
def conv2d_backward(dy: typing.Any, x: typing.Any, w: typing.Any, stride: typing.Any, padding: typing.Any, need_dx: typing.Any) -> typing.Any:
    ...
def conv2d_forward(x: typing.Any, w: typing.Any, b: typing.Any, stride: typing.Any, padding: typing.Any) -> typing.Any:
    ...
def count_unequal(a: typing.Any, b: typing.Any) -> int:
    """
    How many entries of a and b (one shape) differ, counted on the device, as a Python int.
    """
def device_count() -> int:
    """
    CUDA devices present (0 when none or no driver).
    """
def device_name(device: typing.SupportsInt | typing.SupportsIndex = 0) -> str:
    """
    Name, compute capability and memory of a device.
    """
def device_status() -> tuple[int, str]:
    """
    (device count, why 0) — never raises.
    """
def dropout_backward(dy: typing.Any, mask: typing.Any) -> typing.Any:
    ...
def dropout_forward(x: typing.Any, p: typing.Any, seed: typing.Any) -> typing.Any:
    ...
def gemm(a: typing.Any, b: typing.Any, trans_a: typing.Any, trans_b: typing.Any) -> typing.Any:
    ...
def last_step(dy: typing.Any, steps: typing.SupportsInt | typing.SupportsIndex) -> DeviceArray:
    """
    (steps, *dy.shape) zeros but for the last step, which is dy (a many-to-one RNN's dh_all).
    """
def linear_backward(dy: typing.Any, x: typing.Any, w: typing.Any, need_dx: typing.Any) -> typing.Any:
    ...
def linear_forward(x: typing.Any, w: typing.Any, b: typing.Any) -> typing.Any:
    ...
def max_pool2d_backward(dy: typing.Any, argmax: typing.Any, x_shape: typing.Any) -> typing.Any:
    ...
def max_pool2d_forward(x: typing.Any, size: typing.Any, stride: typing.Any) -> typing.Any:
    ...
def positive(z: typing.Any) -> DeviceArray:
    """
    1 where z > 0, else 0, int64.
    """
def rnn_backward(h_all: typing.Any, dh_all: typing.Any, x: typing.Any, h0: typing.Any, w_xh: typing.Any, w_hh: typing.Any, activation: typing.Any, bptt_steps: typing.Any, clip: typing.Any) -> typing.Any:
    ...
def rnn_forward(x: typing.Any, h0: typing.Any, w_xh: typing.Any, w_hh: typing.Any, b_h: typing.Any, activation: typing.Any) -> typing.Any:
    ...
def sgd_update(param: typing.Any, velocity: typing.Any, grad: typing.Any, lr: typing.Any, momentum: typing.Any, nesterov: typing.Any, weight_decay: typing.Any) -> typing.Any:
    ...
def sigmoid_bce(z: typing.Any, y: typing.Any) -> float:
    """
    Mean of max(z, 0) - z*y + log1p(exp(-|z|)) (the binary cross-entropy of sigmoid(z)), as a Python float.
    """
def sigmoid_bce_grad(probs: typing.Any, y: typing.Any) -> DeviceArray:
    """
    (probs - y) / probs.size.
    """
def softmax(z: typing.Any) -> DeviceArray:
    """
    Softmax along the last axis (max-subtracted).
    """
def softmax_nll_backward(probs: typing.Any, labels: typing.Any) -> typing.Any:
    ...
def softmax_nll_forward(logits: typing.Any, labels: typing.Any) -> typing.Any:
    ...
def swap01(a: typing.Any) -> DeviceArray:
    """
    A copy of a with its first two axes swapped (batch-first <-> time-major).
    """
def synchronize() -> None:
    """
    Wait for all kernels (reports asynchronous errors).
    """
def take_rows(a: typing.Any, index: typing.Any) -> DeviceArray:
    """
    The rows index (an int64 DeviceArray, or a host integer array, copied) of a, gathered into a new array.
    """
ACTIVATIONS: dict = {'linear': 0, 'sigmoid': 1, 'tanh': 2, 'relu': 3, 'leaky_relu': 4}
EMULATED: bool = False
OPS: dict = {'gemm': 1, 'linear_forward': 1, 'linear_backward': 3, 'conv2d_forward': 1, 'conv2d_backward': 3, 'max_pool2d_forward': 2, 'max_pool2d_backward': 1, 'softmax_nll_forward': 1, 'softmax_nll_backward': 1, 'activation_forward': 1, 'activation_backward': 1, 'dropout_forward': 2, 'dropout_backward': 1, 'sgd_update': 0, 'adam_update': 0, 'rnn_forward': 1, 'rnn_backward': 5}
RETURNS_LOSS: tuple = ('softmax_nll_forward',)
RNN_ACTIVATIONS: tuple = ('linear', 'sigmoid', 'tanh', 'relu')
