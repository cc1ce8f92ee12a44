#!/usr/bin/env bash
# equations.sh — keeps docs/equations.md honest. For every equation ID the
# document lists as implemented, some unit test in tests/*.c must have a name
# containing eq_<ID> (not followed by another digit, so eq_7_13 does not count
# for 7_1), and every test the document names for it must exist. IDs listed as
# not yet implemented are only counted. With NABLA_DESIGN=path/to/DESIGN.md it
# also checks that every ID of the design's equation table is in the document.
# Every file the document names in parentheses, "(models/rl.c)" (under src/
# or the repository's root), must exist, and a function named just before it,
# "`nb_rl_q_update` (models/rl.c)", must be defined there: a file split or
# renamed leaves no stale path behind.
# Usage: tests/equations.sh   (exit 1 and one FAIL line per problem)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DOC=$ROOT/docs/equations.md
passed=0 failed=0 planned=0

fail() { echo "  FAIL $*"; failed=$((failed + 1)); }

[[ -r $DOC ]] || { echo "  FAIL cannot read $DOC"; echo "0 passed, 1 failed"; exit 1; }
# Every registered unit test, one name a line.
tests=$(grep -ho 'TEST(test_[A-Za-z0-9_]*' "$ROOT"/tests/*.c | sed 's/^TEST(//' | sort -u)

# The document's table rows: | `ID` | what | where | tests |. A row whose
# "where" cell says "not yet implemented" is a planned equation.
rows=$(grep -E '^\| `[A-Za-z0-9_]+` \|' "$DOC")
[[ -n $rows ]] || fail "no equation rows in $DOC"
ids=""
while IFS= read -r row; do
    [[ -n $row ]] || continue
    id=$(sed -E 's/^\| `([A-Za-z0-9_]+)`.*/\1/' <<<"$row")
    ids+="$id"$'\n'
    if grep -qi 'not yet implemented' <<<"$row"; then
        planned=$((planned + 1))
        continue
    fi
    ok=1
    if ! grep -qE "eq_${id}([^0-9]|$)" <<<"$tests"; then
        fail "$id: listed as implemented, but no unit test name contains eq_$id"
        ok=0
    fi
    for t in $(grep -oE '`test_[A-Za-z0-9_]+`' <<<"$row" | tr -d '`'); do
        grep -qx "$t" <<<"$tests" || { fail "$id: the document names $t, which is not a test in tests/*.c"; ok=0; }
    done
    for p in $(grep -oE '\(([a-z_]+/)+[a-z_0-9]+\.(c|h|cu)' <<<"$row" | tr -d '('); do
        [[ -f $ROOT/$p || -f $ROOT/src/$p ]] || { fail "$id: the document names $p, which is not a file"; ok=0; }
    done
    while IFS= read -r m; do
        [[ -n $m ]] || continue
        name=$(sed -E 's/^`([^`]+)`.*/\1/' <<<"$m") p=$(sed -E 's/.*\(//' <<<"$m")
        f=$ROOT/$p
        [[ -f $f ]] || f=$ROOT/src/$p
        [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ && -f $f ]] || continue
        grep -qE "^[A-Za-z].*[ *]$name\(" "$f" ||
            { fail "$id: the document says $name is in $p, which does not define it"; ok=0; }
    done <<<"$(grep -oE '`[^`]+` \(([a-z_]+/)+[a-z_0-9]+\.(c|h|cu)' <<<"$row")"
    ((ok)) && passed=$((passed + 1))
done <<<"$rows"

dups=$(sort <<<"$ids" | uniq -d | grep -v '^$')
[[ -z $dups ]] || fail "IDs listed twice: $(tr '\n' ' ' <<<"$dups")"

# Optional: the design's table (section "one test per equation") against the document.
if [[ -n ${NABLA_DESIGN:-} ]]; then
    design=$(awk '/one test per equation/ {on = 1} on && /^## / && !/one test per equation/ {on = 0} on' "$NABLA_DESIGN" |
        grep '^|' | grep -oE '`[A-Za-z0-9_]+`' | tr -d '`' | sort -u)
    [[ -n $design ]] || fail "no equation IDs found in $NABLA_DESIGN"
    for id in $design; do
        grep -qx "$id" <<<"$ids" || fail "$id: in $NABLA_DESIGN's table but not in docs/equations.md"
    done
fi

echo "equations: $passed implemented and tested, $planned not yet implemented"
echo "$passed passed, $failed failed"
((failed == 0))
