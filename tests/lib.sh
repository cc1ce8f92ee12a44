# lib.sh — what the shell test scripts share (sourced, not run): the counts,
# two ways of recording a result, and the selection of tests by name.
#
# Named tests (cli.sh, faults.sh): each test is a function PREFIX_NAME that
# calls fail on a problem; run_selected PREFIX "$@" runs those whose names
# contain one of the arguments (all without arguments), prints one line
# each and the total, and returns non-zero if any failed.
# Checks (install.sh, readme.sh): ok NAME or bad NAME DETAIL... per check,
# then summary.
passed=0 failed=0

fail() { echo "  FAIL $T: $*"; ok=0; }

# With WORK_ROOT set, each test gets a folder of its own as $WORK, so that no
# test sees (or trips over) the files another one left.
run() {
    local name=$1 t0=$SECONDS
    T=$name ok=1
    if [[ -n ${WORK_ROOT:-} ]]; then
        WORK=$WORK_ROOT/$name
        mkdir -p "$WORK"
    fi
    "$name"
    if ((ok)); then echo "ok   $name ($((SECONDS - t0)) s)"; passed=$((passed + 1)); else echo "FAIL $name"; failed=$((failed + 1)); fi
}

summary() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

run_selected() {
    local prefix=$1 t f want
    shift
    for t in $(declare -F | awk '{print $3}' | grep "^${prefix}_"); do
        want=$(($# == 0))
        for f in "$@"; do [[ $t == *$f* ]] && want=1; done
        ((want)) && run "$t"
    done
    summary
}

ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; shift; for line in "$@"; do printf '%s\n' "$line" | sed 's/^/     /'; done; failed=$((failed + 1)); }
