"""The type names in the public API's annotations, for mypy and for readers (the package ships py.typed and
stubs of its compiled modules); nothing here runs at import but the definitions.

* ``FloatArray``: a NumPy float array (the ops take float32 and float64). ``IntArray``: NumPy int64 (argmax,
  predictions). ``Labels``: class labels, NumPy integers of any dtype or an int64 DeviceArray.
* ``ArrayT``: an op's array type, the one its arrays have and its results get: FloatArray on the host,
  DeviceArray on the device (``deepnum.cuda``).
* ``Array``: either kind, where the side is known only at run time (a model's results are on its device).
* ``Inputs``: data a model takes: a DeviceArray or anything ``np.asarray`` takes (NumPy arrays, row sources
  such as ``datasets.ShiftedImages``), Any to mypy. ``Integer``: a Python or NumPy integer (the layers' sizes).
"""
from typing import Any, TypeVar, Union

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._cudabackend import DeviceArray

FloatArray = NDArray[np.floating[Any]]
IntArray = NDArray[np.int64]
Labels = Union[NDArray[np.integer[Any]], DeviceArray]
ArrayT = TypeVar("ArrayT", FloatArray, DeviceArray)
Array = Union[FloatArray, DeviceArray]
Inputs = Any  # ArrayLike or DeviceArray, narrowed by the model at run time (len(), rows)
Integer = Union[int, np.integer[Any]]
Size = Union[Integer, tuple[Integer, Integer]]

__all__ = ["FloatArray", "IntArray", "Labels", "ArrayT", "Array", "Inputs", "Integer", "Size", "DTypeLike",
           "DeviceArray"]
