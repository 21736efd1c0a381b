#!/bin/sh
# test-install.sh BUILD - install into a scratch prefix and build a program
# against it twice, with pkg-config and with CMake's find_package; check that
# only pshm_* symbols are exported; check the POSIX fallback still compiles.
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

bad=$(nm -D --defined-only "$lib/libpshm.so" | awk '$2 ~ /[TDBRW]/ {print $3}' | grep -v '^pshm_' || true)
[ -z "$bad" ] || fail "exported symbols outside pshm_: $bad"
nm -D --defined-only "$lib/libpshm.so" | grep -q ' pshm__' && fail "internal pshm__ symbols exported"
passed=$((passed + 1))

# pkg-config
export PKG_CONFIG_PATH="$lib/pkgconfig"
cc -std=c11 -Wall -Werror $(pkg-config --cflags pshm) -o "$tmp/hello_pc" "$top/examples/hello.c" \
    $(pkg-config --libs pshm) -Wl,-rpath,"$lib" || fail "pkg-config build"
out=$("$tmp/hello_pc") || fail "pkg-config program failed"
[ "$out" = "child read: hello from the parent" ] || fail "pkg-config program printed '$out'"
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

# The portable fallback keeps compiling.
cmake -S "$top" -B "$tmp/posix" -DPSHM_FORCE_POSIX=ON -DPSHM_TESTS=OFF >/dev/null || fail "posix configure"
cmake --build "$tmp/posix" -j 2 >/dev/null 2>"$tmp/posix.err" || { cat "$tmp/posix.err"; fail "posix fallback build"; }
passed=$((passed + 1))

echo "install: $passed passed, 0 failed"
