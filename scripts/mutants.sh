#!/usr/bin/env bash
# Mutation testing of the code that decides what gets hurt and how it is undone: cargo-mutants
# puts one small bug at a time into the code (an operator flipped, a function returning a default,
# a match arm deleted), builds, and runs the tests. A mutant the tests still pass is a "survivor":
# a bug of that shape would ship. Every survivor must be listed, with why it is harmless, in
# tests/mutants/survivors.txt; an unexplained survivor fails this script.
#
#   scripts/mutants.sh                 safety/ and rollback/, each against its own crate's tests
#   scripts/mutants.sh safety          one of: safety, rollback, executor
#   scripts/mutants.sh executor        the executor's judging and timing code (judge, observe,
#                                      still_down, keep) against the whole-drill tests
#                                      (runner/tests/faults.rs and scenario.rs): slow, see README
#   scripts/mutants.sh claims          the bugs the README and the notes say a test catches, as
#                                      hand-written patches (tests/mutants/claims/*.patch, each
#                                      naming the test that must fail): applied one at a time to
#                                      a copy of HEAD, each must build and fail its test. Starts
#                                      the suite's services for the patches that need them.
#
# Not part of scripts/test.sh (it takes tens of minutes); the README's table is this script's
# output. Needs: cargo, git (installs cargo-mutants, pinned below, when missing).
# JOBS: parallel builds (default 1: these machines have 2 cores and a mutant build uses both).
set -euo pipefail
cd "$(dirname "$0")/.."

version=27.1.0
if [[ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $version" ]]; then
    echo "== installing cargo-mutants $version" >&2
    cargo install --locked --quiet cargo-mutants --version "$version"
fi

# Only pass or fail counts: a failing property test need not spend minutes shrinking its case.
export PROPTEST_MAX_SHRINK_ITERS=1
explained=tests/mutants/survivors.txt
out=target/mutants
mkdir -p "$out"
status=0

# One area: its cargo-mutants arguments, then `--`, then cargo test's.
area() {
    local name=$1
    shift
    echo "== $name: cargo mutants $*" >&2
    local started=$SECONDS
    # cargo-mutants exits 2 when mutants survive, 3 on timeouts: judged below, from its files.
    # ITERATE=1 skips what an earlier run here caught (cargo-mutants --iterate).
    cargo mutants --no-shuffle --jobs "${JOBS:-1}" ${ITERATE:+--iterate} --output "$out/$name" "$@" \
        >"$out/$name.log" 2>&1 || true
    local dir=$out/$name/mutants.out
    if [[ ! -f $dir/outcomes.json ]]; then
        echo "$name: cargo-mutants did not run; see $out/$name.log" >&2
        tail -20 "$out/$name.log" >&2
        status=1
        return
    fi
    # A survivor is named without its line and column, which move as the code around it changes.
    local unexplained
    unexplained=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' "$dir/missed.txt" | sort -u |
        while IFS= read -r mutant; do
            grep -qxF -- "$mutant" <(grep -vE '^(#|[[:space:]]|$)' "$explained") || echo "$mutant"
        done)
    count() { if [[ -s $dir/$1 ]]; then grep -c . "$dir/$1"; else echo 0; fi; }
    printf '| %s | %d | %d | %d | %d | %d | %d min |\n' "$name" \
        "$(($(count caught.txt) + $(count missed.txt) + $(count timeout.txt) + $(count unviable.txt)))" \
        "$(count caught.txt)" "$(count missed.txt)" "$(count timeout.txt)" "$(count unviable.txt)" \
        $(((SECONDS - started + 30) / 60)) >>"$out/table.md"
    if [[ -n $unexplained ]]; then
        echo "$name: survivors not explained in $explained (kill each with a test, or add it there with why it is harmless):" >&2
        echo "$unexplained" | sed 's/^/  /' >&2
        status=1
    fi
}

# Each hand-written bug in a copy of HEAD: it must build, and its test must fail.
claims() {
    local tree=$out/claims-tree started=$SECONDS caught=0 missed=0
    git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
    git worktree prune
    git worktree add --detach --quiet "$tree" HEAD
    # The copy builds into this checkout's target/: its dependencies are built already.
    export CARGO_TARGET_DIR=$PWD/target
    for claim in tests/mutants/claims/*.patch; do
        local name test needs args
        name=$(basename "$claim" .patch)
        test=$(sed -n 's/^# Caught by: //p' "$claim")
        read -r -a args <<<"$test"
        needs=$(sed -n 's/^# Needs: //p' "$claim")
        if [[ $needs == services && -z ${FIREDRILL_TEST_POSTGRES:-} ]]; then
            scripts/services.sh start >&2
            trap 'scripts/services.sh stop' EXIT
            # shellcheck disable=SC1091
            source .test-services/env
        fi
        git -C "$tree" checkout --quiet -- .
        # Without the bug the test passes, or its failing proves nothing.
        if ! (cd "$tree" && CI=true cargo test "${args[@]}") >"$out/claims-$name.log" 2>&1; then
            echo "$name: cargo test $test fails without the bug; see $out/claims-$name.log" >&2
            missed=$((missed + 1))
            status=1
            continue
        fi
        if ! git -C "$tree" apply "$PWD/$claim" 2>>"$out/claims-$name.log"; then
            echo "$name: the patch no longer applies to HEAD: write it again against the code as it is" >&2
            missed=$((missed + 1))
            status=1
            continue
        fi
        if ! (cd "$tree" && cargo test --quiet "${args[@]}" --no-run) >>"$out/claims-$name.log" 2>&1; then
            echo "$name: the bug does not build; see $out/claims-$name.log" >&2
            missed=$((missed + 1))
            status=1
        elif (cd "$tree" && CI=true cargo test "${args[@]}") >>"$out/claims-$name.log" 2>&1; then
            echo "$name: NOT caught: cargo test $test passes with the bug in" >&2
            missed=$((missed + 1))
            status=1
        else
            echo "$name: caught by cargo test $test" >&2
            caught=$((caught + 1))
        fi
    done
    git worktree remove --force "$tree"
    unset CARGO_TARGET_DIR
    printf '| claims | %d | %d | %d | 0 | 0 | %d min |\n' $((caught + missed)) "$caught" "$missed" \
        $(((SECONDS - started + 30) / 60)) >>"$out/table.md"
}

areas=("$@")
[[ ${#areas[@]} -gt 0 ]] || areas=(safety rollback)
printf '| area | mutants | caught | survived (explained) | timed out | unviable | time |\n|---|---|---|---|---|---|---|\n' >"$out/table.md"
for a in "${areas[@]}"; do
    case $a in
    # A mutant that makes a test loop forever counts as caught (timed out) after the timeout:
    # the unmutated tests take seconds.
    safety) area safety --package firedrill-safety --timeout 30 -- --lib --tests ;;
    rollback) area rollback --package firedrill-rollback --timeout 30 -- --lib --tests ;;
    executor)
        area executor --timeout 300 --file runner/src/drill/executor.rs --file runner/src/drill/state.rs --file runner/src/drill/record.rs --re '\bin (judge|observe|Injection::still_down|keep)\b' \
            -- --test faults --test scenario
        ;;
    claims) claims ;;
    *)
        echo "usage: scripts/mutants.sh [safety] [rollback] [executor] [claims]" >&2
        exit 2
        ;;
    esac
done
cat "$out/table.md"
exit $status
