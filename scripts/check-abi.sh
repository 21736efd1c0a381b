#!/bin/sh
# SPDX-License-Identifier: MIT
# check-abi.sh LIB HEADER MAP - the shared library exports exactly the
# functions the header declares PSHM_API, each under a symbol version from
# the version script, and nothing else.
set -eu
lib=$1 header=$2 map=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "abi: FAIL: $*" >&2; exit 1; }

python3 - "$header" >"$tmp/header" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for n in sorted(set(re.findall(r'PSHM_API[^;(]*?\b(pshm_[a-z0-9_]+)\s*\(', text, re.S))):
    print(n)
PY
sed -n 's/^ *\(pshm_[a-z0-9_]*\);$/\1/p' "$map" | sort >"$tmp/map"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRWV]$/ {print $3}' | sort >"$tmp/exported"

diff -u "$tmp/header" "$tmp/map" >"$tmp/d1" || { cat "$tmp/d1"; fail "src/libpshm.map and pshm.h differ"; }
sed 's/@.*//' "$tmp/exported" | sort >"$tmp/names"
diff -u "$tmp/header" "$tmp/names" >"$tmp/d2" || { cat "$tmp/d2"; fail "exported symbols and pshm.h differ"; }
unversioned=$(grep -v '@@PSHM_' "$tmp/exported" || true)
[ -z "$unversioned" ] || fail "exported without a symbol version: $unversioned"
echo "abi: $(wc -l <"$tmp/header") functions exported, each versioned"
