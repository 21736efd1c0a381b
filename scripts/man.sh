#!/bin/sh
# SPDX-License-Identifier: MIT
# man.sh [--check] - make doc/pshm.1 from doc/pshm.1.scd with scdoc, or
# (--check) say whether the committed doc/pshm.1 is what scdoc makes.
# The page's date is fixed here, so the output does not depend on the day
# it is made: set it to the release date when the version changes.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
SOURCE_DATE_EPOCH=1735689600 # 2025-01-01
export SOURCE_DATE_EPOCH
command -v scdoc >/dev/null 2>&1 || { echo "man: scdoc is not installed (scripts/deps.sh scdoc)" >&2; exit 1; }
if [ "${1:-}" = --check ]; then
    scdoc <"$top/doc/pshm.1.scd" | cmp -s - "$top/doc/pshm.1" ||
        { echo "man: doc/pshm.1 is not what doc/pshm.1.scd makes: run scripts/man.sh" >&2; exit 1; }
    exit 0
fi
scdoc <"$top/doc/pshm.1.scd" >"$top/doc/pshm.1"
