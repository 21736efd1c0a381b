#!/usr/bin/env bash
# demo.sh BUILD - the scenario pshm exists for: a producer process puts data in
# a named block, a consumer process attaches by name and uses it, and once
# they are done the block is gone from /dev/shm.
set -euo pipefail
B=${1:-build}
name="pshm_demo_$$"

echo "== raw block: producer -> consumer"
coproc PROD { exec "$B/examples/producer" "$name" 16; }
read -r line <&"${PROD[0]}"
echo "$line"
"$B/pshm" info "$name" 2>/dev/null | sed 's/^/   pshm info: /' || true
"$B/examples/consumer" "$name"
exec {PROD[1]}>&-           # producer's stdin closes: it closes the block
read -r line <&"${PROD[0]}" && echo "$line"
wait "$PROD_PID"
if [ -e "/dev/shm/$name" ]; then
    echo "demo: FAIL: /dev/shm/$name is still there" >&2
    exit 1
fi
echo "after: /dev/shm/$name is gone (AUTO lifetime: the last holder closed it)"
