# CMake toolchain for a cross-build of deepnum for Linux aarch64 with Debian's aarch64-linux-gnu-g++
# (g++-aarch64-linux-gnu), as .ci/portable does; Python's and NumPy's aarch64 headers are given on the command line
# (-DPython_INCLUDE_DIR=..., -DPython_NumPy_INCLUDE_DIR=...). Programs it builds run under qemu-aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)
