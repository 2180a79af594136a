// The DLPack data structures that deepnum._cuda exchanges (DeviceArray.__dlpack__, deepnum.cuda.from_dlpack),
// written from the DLPack 1.1 specification (dmlc/dlpack, include/dlpack/dlpack.h of v1.1 and the Python
// specification, docs/source/python_spec.rst): the layouts, names and values are the specification's, so these
// structs are ABI-compatible with every producer and consumer of DLPack 1.x (the legacy, unversioned
// DLManagedTensor is the 0.x layout that 1.x keeps). Only what deepnum uses is here: no dlpack.h is vendored.
//
// Ownership (python_spec.rst): a producer wraps a DLManagedTensor in a PyCapsule named "dltensor" (a
// DLManagedTensorVersioned in one named "dltensor_versioned"). The consumer that takes it renames the capsule
// "used_dltensor" ("used_dltensor_versioned") and then owns it: it calls `deleter` exactly once when it no longer
// needs the memory. A capsule that is destroyed still bearing its first name was never consumed, and its own
// destructor calls the deleter.
#pragma once
#include <cstdint>

namespace deepnum {
namespace dlpack {

constexpr std::uint32_t kMajorVersion = 1;  // the DLPack version of these structs
constexpr std::uint32_t kMinorVersion = 1;

struct DLPackVersion {
  std::uint32_t major;
  std::uint32_t minor;
};

// DLDeviceType (a C enum: int-sized). deepnum's arrays are kDLCUDA; the rest name other producers' devices in errors.
enum DLDeviceType : std::int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,  // pinned host memory
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
  kDLWebGPU = 15,
  kDLHexagon = 16,
  kDLMAIA = 17,
};

struct DLDevice {
  DLDeviceType device_type;
  std::int32_t device_id;
};

// DLDataTypeCode (the codes up to 6; 1.1 adds float8/6/4 codes from 7 on, which deepnum names by number)
enum DLDataTypeCode : std::uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
};

struct DLDataType {
  std::uint8_t code;   // a DLDataTypeCode
  std::uint8_t bits;   // of one lane
  std::uint16_t lanes; // 1 for scalars
};

struct DLTensor {
  void* data;                 // the allocation; the first element is at data + byte_offset
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;        // ndim entries
  std::int64_t* strides;      // ndim entries in elements, or NULL for a C-contiguous (row-major compact) tensor
  std::uint64_t byte_offset;
};

// The legacy (unversioned) managed tensor: capsule "dltensor".
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// flags of DLManagedTensorVersioned
constexpr std::uint64_t kFlagReadOnly = 1ULL << 0;        // the consumer must not write through it
constexpr std::uint64_t kFlagIsCopied = 1ULL << 1;        // the producer copied the data for this export
constexpr std::uint64_t kFlagSubbytePadded = 1ULL << 2;   // sub-byte types padded to a byte each (1.1)

// The versioned managed tensor (DLPack >= 1.0): capsule "dltensor_versioned".
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  std::uint64_t flags;
  DLTensor dl_tensor;
};

}  // namespace dlpack
}  // namespace deepnum
