#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/breaks.sh [NAME...] - replay the deliberate breaks of tests/BREAKS.md
# (issue 14): in a scratch copy of the committed tree (git archive HEAD),
# each break edits the code under test, rebuilds one test binary, runs it,
# and must see it fail with the expected line (in one of 3 runs: some
# breaks open a race's window); then the edit is undone and the same run
# must pass. Exit 1 if a test stays green under its break, or a
# break no longer applies (the code it edits changed: update it here).
# Names select breaks (e.g. `tests/breaks.sh queue-lost seed`); --list.
# About 15 minutes on 2 cores; not part of make test. Needs root (private
# mounts), clang with libFuzzer for fuzz-list-exact-size.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
chmod 755 "$tmp" # test_harness runs test_block as nobody
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir -p "$src"
git -C "$top" archive HEAD | tar -x -C "$src"
jobs=$(nproc 2>/dev/null || echo 2)
pass=0 fail=0
want_all=1 list=0
for a in "$@"; do
    case $a in --list) list=1 ;; *) want_all=0 ;; esac
done
wanted() {
    [ "$want_all" = 1 ] && return 0
    for w in $ARGS; do [ "$w" = "$1" ] && return 0; done
    return 1
}
ARGS="$*"

configure() { # DIR [cmake args...]
    d=$1; shift
    [ -f "$d/CMakeCache.txt" ] && return 0
    cmake -S "$src" -B "$d" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
}

# In a private mount namespace with a /dev/shm of its own (for breaks that
# remove what is not theirs: never on the machine's /dev/shm).
private() {
    unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs breaks /dev/shm && exec "$@"' sh "$@"
}

# brk NAME BUILD TARGETS FILE PERL EXPECT CMD...: PERL (a perl -0p program)
# edits FILE (relative to the tree); CMD runs in BUILD.
brk() {
    name=$1 bdir=$2 target=$3 file=$4 prog=$5 expect=$6
    shift 6
    if [ "$list" = 1 ]; then echo "$name"; return 0; fi
    wanted "$name" || return 0
    f=$src/$file
    cp -p "$f" "$tmp/orig"
    perl -0pi -e "$prog" "$f"
    if cmp -s "$f" "$tmp/orig"; then
        echo "breaks: $name: FAIL: the break no longer applies to $file"
        fail=$((fail + 1)); return 0
    fi
    ok=1
    if ! cmake --build "$bdir" -j "$jobs" --target $target >"$tmp/build.log" 2>&1; then
        tail -n 20 "$tmp/build.log"; echo "breaks: $name: FAIL: broken build"; ok=0
    else
        rc=0 try=0
        while [ "$rc" = 0 ] && [ "$try" -lt 3 ]; do # a race's window: up to 3 runs
            try=$((try + 1))
            (cd "$bdir" && "$@") >"$tmp/out" 2>&1 || rc=$?
        done
        if [ "$rc" = 0 ]; then
            echo "breaks: $name: FAIL: green under its break (3 runs)"; tail -n 5 "$tmp/out"; ok=0
        elif ! grep -qF -- "$expect" "$tmp/out"; then
            echo "breaks: $name: FAIL: red (exit $rc), but not with '$expect':"; tail -n 8 "$tmp/out"; ok=0
        else
            echo "breaks: $name: red (run $try): $(grep -F -- "$expect" "$tmp/out" | head -n 1 | sed 's/^ *//')"
        fi
    fi
    cp "$tmp/orig" "$f"
    touch "$f" # newer than the broken object: rebuilt
    if [ "$ok" = 1 ]; then
        cmake --build "$bdir" -j "$jobs" --target $target >"$tmp/build.log" 2>&1 || {
            tail -n 20 "$tmp/build.log"; echo "breaks: $name: FAIL: restored build"; ok=0; }
    fi
    if [ "$ok" = 1 ] && ! (cd "$bdir" && "$@") >"$tmp/out" 2>&1; then
        echo "breaks: $name: FAIL: red after restoring"; tail -n 8 "$tmp/out"; ok=0
    fi
    if [ "$ok" = 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}

B=$tmp/build
[ "$list" = 1 ] || configure "$B"

# 1-2. The harness: a skip is never a pass; a mistyped name fails.
brk skip-is-not-a-pass "$B" "test_harness test_block" tests/harness.c \
    's/return passed == 0 && skipped > 0 \? SKIP_CODE : 0;/return 0;/' \
    'a run that only skipped: exit 0' \
    tests/test_harness a_skip_is_never_a_pass_and_unknown_names_fail
brk unknown-name "$B" "test_harness test_block" tests/harness.c \
    's/return usage\("no test named ", argv\[a\]\);/;/; s/return usage\("no test selected", ""\);/return 0;/' \
    'code == 2: 0 != 2' \
    tests/test_harness a_skip_is_never_a_pass_and_unknown_names_fail
# 3. Isolation: a test that collects the whole directory.
brk global-gc "$B" test_block tests/test_block.c \
    's/(\n    CHECK_OK\(pshm_block_gc\(name, 0, NULL, NULL, &nremoved\)\);)/\n    { size_t junk; pshm_block_gc(NULL, 0, NULL, NULL, &junk); }$1/' \
    'a stale block that is not its own' \
    private tests/test_block persist_outlives_everyone
# 4. Queue storms, message by message: a lost message with a drop counted
# (totals would pass: missing == drops), a drop counted for none.
brk queue-lost "$B" test_queue src/queue.c \
    's/if \(t >= q->g.max_deliveries\) \{/if (t >= q->g.max_deliveries || pos % 16 == 5) {/' \
    'CHECK(pm.need_unknown <= pm.unknown)' \
    tests/test_queue mpmc_sigkill_storm
brk queue-drop-counted "$B" test_queue src/queue.c \
    's/(\n(\s+)ev_count\(&pp->ev_redeliv, gen\);\n(\s+)PSHM__FAULT\("queue.reap.counted"\);\n(\s+)\(void\)Q_CAS\(&c->word)/\n$2if (pos % 16 == 5) ev_count(&pp->ev_drop, gen);$1/' \
    'CHECK(st.drops >= pm.drops_lo && st.drops <= pm.drops_hi)' \
    tests/test_queue mpmc_sigkill_storm
# 5. Kill points in the library: one removed; the recovery of its window broken.
brk queue-point-removed "$B" test_queue src/queue_ops.c \
    's/PSHM__FAULT\("queue.commit.between_words"\);//' \
    'no producer died at queue.commit.between_words' \
    tests/test_queue spsc_sigkill_storm
brk queue-no-scrub "$B" test_queue src/queue_ops.c \
    's/Q_STS\(&r0->seq, 0\);/;/' \
    'want EAGAIN' \
    tests/test_queue spsc_producer_killed_between_the_two_commit_stores_of_a_wrap
brk queue-half-commit-counted "$B" test_queue src/queue.c \
    's/(\n    return pshm__q_spsc_committed\(q, pos, &m, &l, &nx\) == 1;)/\n    if ((pos & q->mask) && Q_LDA(&((struct qrec *)q->ring)->seq) == pos - (pos & q->mask) + q->g.ring_size + 1)\n        return 1;$1/' \
    'CHECK(st.lost_reservations >= pm.lost_lo' \
    tests/test_queue spsc_sigkill_storm
# 6. Floors: no child armed, no kill point of its own: kills from outside only.
brk queue-floors "$B" test_queue tests/test_queue.c \
    's/\n    if \(gen % 2\) \{/\n    if (0) {/; s/if \(die_rate && th_rnd\(\)/if (0 && die_rate && th_rnd()/' \
    'too few deaths in the windows' \
    tests/test_queue mpmc_sigkill_storm
brk block-floor-in-call "$B" test_block tests/test_block.c \
    's/(\n        kill\(w\[i\], SIGKILL\);)/\n        for (int s = 0; s < 1000 && ALOAD(&AS->in_call[i]); s++) usleep(10);$1/' \
    "kills inside a pshm call's window (floor" \
    tests/test_block auto_sigkill_storm_never_cut_short_never_leaked
# 7. A seed replays a worker's stream whatever its pid.
brk seed "$B" test_harness tests/harness.c \
    's/\^ mix64\(worker \+ 1\)\);/^ mix64(worker + 1) ^ (uint64_t)getpid());/' \
    'CHECK(memcmp(DR->v[0], DR->v[1], sizeof DR->v[0]) == 0)' \
    tests/test_harness a_seed_replays_each_worker_s_numbers
# 9. Torn writes: CPython's zero-then-write.
brk torn-write "$B" test_list src/list.c \
    's/(\n(\s+)st64\(p \+ it->off, w\);)/\n$2st64(p + it->off, 0);$1/' \
    'torn value 0000000000000000' \
    tests/test_list concurrent_scalar_sets_never_tear
# 10. test_os: a failing proc_start.
brk proc-start "$B" test_os src/os/linux.c \
    's/(\n    snprintf\(path, sizeof path, "\/proc\/%ld\/stat", pid\);)/\n    if (pid != (long)getpid()) return -EIO;$1/' \
    'pshm__os_proc_start(p, &cs): got EIO' \
    tests/test_os process_start_time_tells_reused_pids
# 11. A signal handler never ends a wait.
brk signal-queue "$B" test_signals src/queue_ops.c \
    's/(\n    int r = pshm__futex_wait\(seq, s, tp\);)/$1\n    if (r == -EINTR)\n        return -EINTR;/' \
    'the wait ended before it was released: EINTR' \
    tests/test_signals queue_waits_are_not_ended_by_signal_handlers
brk signal-sync "$B" test_signals src/sync.c \
    's/\n    case -EINTR:\n        return WOKE;/\n        return WOKE;/' \
    'the wait ended before it was released: EINTR' \
    tests/test_signals sync_waits_are_not_ended_by_signal_handlers
# 12. Huge pages: the madvise dropped; availability not checked.
brk huge-no-madvise "$B" test_block src/os/linux.c \
    's/return madvise\(addr, len, MADV_HUGEPAGE\) == 0 \? 0 : neg_errno\(\);/(void)addr, (void)len; return 0;/' \
    'huge=advise tmpfs, huge_pages 1: 0 kB' \
    tests/test_block huge_pages_back_the_block_where_dev_shm_has_them
brk huge-unchecked "$B" test_block src/block.c \
    's/if \(out->huge_pages\)\n/if (0 && out->huge_pages)\n/' \
    'want PSHM_ENOHUGE' \
    tests/test_block huge_pages_back_the_block_where_dev_shm_has_them
# 14. Block lifetime fault points: one removed.
brk block-point-removed "$B" test_block src/block.c \
    's/PSHM__FAULT\("block.remove.unlinked"\);//' \
    'no worker died at block.remove.unlinked' \
    tests/test_block auto_sigkill_storm_never_cut_short_never_leaked
# 13. The POSIX fallback refuses instead of pretending.
P=$tmp/posix
if [ "$list" = 1 ] || wanted posix-pretends; then
    [ "$list" = 1 ] || configure "$P" -DPSHM_FORCE_POSIX=ON
fi
brk posix-pretends "$P" test_block src/os/posix.c \
    's/(int pshm__os_hold_query\(int fd\)\n\{\n    \(void\)fd;\n    return) -ENOTSUP;/$1 1;/' \
    'pshm__os_hold_query(pshm_block_fd(b)): got UNKNOWN (1)' \
    tests/test_block --portable
# 8. fuzz_list sees a read one past the list's end (ASan, exact-size buffer).
F=$tmp/fuzz
if [ "$list" = 0 ] && wanted fuzz-list-exact-size; then
    configure "$F" -DCMAKE_C_COMPILER=clang -DPSHM_FUZZ=ON -DPSHM_TESTS=OFF
fi
brk fuzz-list-exact-size "$F" fuzz_list src/list.c \
    's/ld_code\(fc \+ 8 \* lay->n \+ i\)/ld_code(fc + 8 * lay->n + i + 1)/' \
    'AddressSanitizer: heap-buffer-overflow' \
    tests/fuzz/fuzz_list -runs=0 "$src/tests/fuzz/seeds/fuzz_list"

[ "$list" = 1 ] && exit 0
echo "breaks: $pass red as they should, $fail failed"
[ "$fail" = 0 ]
