#!/usr/bin/env bash
# equations.sh — keeps docs/equations.md honest. For every equation ID the
# document lists as implemented, some unit test in tests/*.c must have a name
# containing eq_<ID> (not followed by another digit, so eq_7_13 does not count
# for 7_1), and every test the document names for it must exist. IDs listed as
# not yet implemented are only counted. With NABLA_DESIGN=path/to/DESIGN.md it
# also checks that every ID of the design's equation table is in the document.
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
