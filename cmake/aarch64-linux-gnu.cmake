# CMake toolchain file: cross-compile for AArch64 Linux with Debian's
# gcc-aarch64-linux-gnu (+ libc6-dev-arm64-cross). Used by scripts/test-neon.sh
# in two ways:
#   - kernels only (default, TL_CROSS_STATIC=ON): executables are linked
#     statically, so qemu-user runs them without an arm64 loader or sysroot:
#       cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#             -DTL_KERNELS_ONLY=ON
#   - the full CLI (TL_CROSS_STATIC=OFF): linked dynamically against Debian's
#     multiarch arm64 packages (libcjson-dev:arm64, libonig5:arm64 from
#     scripts/install-deps.sh --neon), which ship shared libraries only, so a
#     static link is impossible. pkg-config then reads only the arm64 .pc files
#     (TL_CROSS_PKG_CONFIG_LIBDIR), find_library may look in /usr (the
#     multiarch dir /usr/lib/aarch64-linux-gnu), and /usr/include is searched
#     *after* the cross sysroot (-idirafter), for the arch-independent library
#     headers only (cjson/cJSON.h, oniguruma.h): the sysroot's libc headers win.
#     The binaries need the arm64 loader (/lib/ld-linux-aarch64.so.1, from
#     libc6:arm64) to run under qemu-aarch64.
# ctest runs the executables through qemu-aarch64 -cpu max when it is installed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(TL_CROSS_PREFIX aarch64-linux-gnu- CACHE STRING "cross tool prefix")
set(CMAKE_C_COMPILER ${TL_CROSS_PREFIX}gcc)

option(TL_CROSS_STATIC "Link statically (OFF: dynamically, against the arm64 multiarch libraries)" ON)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

if(TL_CROSS_STATIC)
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
else()
  # "/" as a second root lets ONLY-mode searches reach /usr/lib/aarch64-linux-gnu
  # (and the -L dirs pkg-config reports) as they are, not re-rooted under the sysroot.
  list(APPEND CMAKE_FIND_ROOT_PATH /)
  set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
  set(CMAKE_C_FLAGS_INIT "-idirafter /usr/include")
  set(TL_CROSS_PKG_CONFIG_LIBDIR "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig"
      CACHE STRING "PKG_CONFIG_LIBDIR for the dynamic cross build (arm64 .pc files only)")
  # LIBDIR (not PATH): the host's x86_64 .pc files must never be found.
  set(ENV{PKG_CONFIG_LIBDIR} "${TL_CROSS_PKG_CONFIG_LIBDIR}")
  set(ENV{PKG_CONFIG_PATH} "")
endif()

# "max": every extension qemu emulates (dotprod and fp16 included), so the
# NEON variant is selected; scripts/test-neon.sh also runs a CPU without them.
find_program(TL_QEMU_AARCH64 qemu-aarch64)
if(TL_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TL_QEMU_AARCH64} -cpu max)
endif()
