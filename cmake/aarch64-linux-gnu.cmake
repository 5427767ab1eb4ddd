# CMake toolchain file: cross-compile for AArch64 Linux with Debian's
# gcc-aarch64-linux-gnu (+ libc6-dev-arm64-cross). Executables are linked
# statically, so qemu-user runs them without a sysroot (-L), and ctest runs
# them through qemu-aarch64 when it is installed. Used by scripts/test-neon.sh:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DTL_KERNELS_ONLY=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(TL_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "cross tool prefix")
set(CMAKE_C_COMPILER ${TL_CROSS_PREFIX}gcc)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# "max": every extension qemu emulates (dotprod and fp16 included), so the
# NEON variant is selected; scripts/test-neon.sh also runs a CPU without them.
find_program(TL_QEMU_AARCH64 qemu-aarch64)
if(TL_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TL_QEMU_AARCH64} -cpu max)
endif()
