// array_cache.cpp — the NumPy data-memory handler that caches the blocks of large arrays.
// Each returns a new reference, or nullptr with a Python error set; call with the GIL held.
#pragma once
#include <Python.h>

#include <cstddef>

namespace deepnum {

// Installs the caching handler for the current context; returns the handler it replaces.
PyObject* use_array_cache();
// Installs `previous` (what use_array_cache returned) again; returns the caching handler's capsule.
PyObject* restore_allocator(PyObject* previous);
// Bytes of freed blocks the cache holds now.
std::size_t array_cache_bytes();

}  // namespace deepnum
