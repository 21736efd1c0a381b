#!/bin/sh
# SPDX-License-Identifier: MIT
# test-install.sh BUILD - install into a scratch prefix and build a program
# against it twice, with pkg-config and with CMake's find_package; check the
# exported symbols and their versions against the header, the versions that
# must agree, that a C++ consumer compiles warning-free, that uninstall
# removes everything; build the POSIX fallback and run the portable tests
# against it.
set -eu
build=$(cd "${1:-build}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "install: FAIL: $*" >&2; exit 1; }
passed=0

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
lib=$(ls -d "$tmp"/prefix/lib*/ | head -n 1)
[ -f "$lib/libpshm.a" ] || fail "libpshm.a not installed"
soname=$(objdump -p "$lib/libpshm.so" | awk '/SONAME/ {print $2}')
[ "$soname" = "libpshm.so.0" ] || fail "SONAME is '$soname'"
passed=$((passed + 1))

"$top/scripts/check-abi.sh" "$lib/libpshm.so" "$top/include/pshm.h" "$top/src/libpshm.map" || fail "ABI"
passed=$((passed + 1))

# pkg-config
export PKG_CONFIG_PATH="$lib/pkgconfig"
cc -std=c11 -Wall -Werror $(pkg-config --cflags pshm) -o "$tmp/hello_pc" "$top/examples/hello.c" \
    $(pkg-config --libs pshm) -Wl,-rpath,"$lib" || fail "pkg-config build"
out=$("$tmp/hello_pc") || fail "pkg-config program failed"
[ "$out" = "child read: hello from the parent" ] || fail "pkg-config program printed '$out'"
passed=$((passed + 1))

# One version everywhere: header, library at run time, pkg-config, CLI.
hv=$(sed -n 's/^#define PSHM_VERSION_STRING "\(.*\)"$/\1/p' "$top/include/pshm.h")
pv=$(pkg-config --modversion pshm)
cat > "$tmp/ver.c" <<'C'
#include <pshm.h>
#include <stdio.h>
int main(void) { puts(pshm_version_string()); return pshm_version() == PSHM_VERSION_NUMBER ? 0 : 1; }
C
cc -std=c11 $(pkg-config --cflags pshm) -o "$tmp/ver" "$tmp/ver.c" $(pkg-config --libs pshm) -Wl,-rpath,"$lib"
lv=$("$tmp/ver") || fail "pshm_version() disagrees with PSHM_VERSION_NUMBER"
cv=$("$tmp/prefix/bin/pshm" -V | awk '{print $2}')
[ "$hv" = "$pv" ] && [ "$hv" = "$lv" ] && [ "$hv" = "$cv" ] ||
    fail "versions differ: header $hv, pkg-config $pv, library $lv, CLI $cv"
passed=$((passed + 1))

# A C++ consumer compiles without a warning, with g++ and clang++.
for cxx in g++ clang++; do
    command -v $cxx >/dev/null 2>&1 || fail "$cxx not installed"
    $cxx -std=c++11 -Wall -Wextra -pedantic -Werror $(pkg-config --cflags pshm) \
        -o "$tmp/cxx_$cxx" "$top/tests/abi/cxx_consumer.cpp" $(pkg-config --libs pshm) \
        -Wl,-rpath,"$lib" || fail "C++ consumer with $cxx"
    "$tmp/cxx_$cxx" >/dev/null || fail "C++ consumer built with $cxx failed"
done
passed=$((passed + 1))

# find_package
mkdir -p "$tmp/consumer"
cp "$top/examples/hello.c" "$tmp/consumer/"
cat > "$tmp/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(pshm REQUIRED)
add_executable(hello hello.c)
target_link_libraries(hello PRIVATE pshm::pshm)
CM
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null || fail "find_package configure"
cmake --build "$tmp/consumer/build" >/dev/null || fail "find_package build"
out=$("$tmp/consumer/build/hello") || fail "find_package program failed"
[ "$out" = "child read: hello from the parent" ] || fail "find_package program printed '$out'"
passed=$((passed + 1))

# make uninstall removes every installed file.
(cd "$build" && cmake --build . --target uninstall >/dev/null) || fail "uninstall"
left=$(find "$tmp/prefix" -type f -o -type l)
[ -z "$left" ] || fail "uninstall left: $left"
passed=$((passed + 1))

# The portable fallback builds, and the tests that need only PERSIST blocks
# (TEST_PORTABLE: blocks, lists, arrays, and what the fallback must refuse)
# pass against it.
cmake -S "$top" -B "$tmp/posix" -DPSHM_FORCE_POSIX=ON -DPSHM_TESTS=ON >/dev/null || fail "posix configure"
cmake --build "$tmp/posix" -j 2 --target pshm test_block test_list test_array \
    >/dev/null 2>"$tmp/posix.err" || { cat "$tmp/posix.err"; fail "posix fallback build"; }
passed=$((passed + 1))
for t in test_block test_list test_array; do
    "$tmp/posix/tests/$t" --portable >"$tmp/posix.out" 2>&1 || { cat "$tmp/posix.out"; fail "posix fallback: $t"; }
    echo "install: posix fallback $t: $(grep " passed, " "$tmp/posix.out" | tail -n 1)"
done
passed=$((passed + 1))

echo "install: $passed passed, 0 failed"
