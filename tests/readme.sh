#!/usr/bin/env bash
# readme.sh — the README runs as written. Every command of its ```sh blocks
# (but the set-up ones) runs, in order, from a scratch folder that mirrors the
# repository, so later commands find the files earlier ones wrote; commands that
# would train for minutes are shortened by the rules of the table below. A
# command that exits non-zero fails, with its stderr. The README must also name
# no file outside the repository, only paths that exist, and only subcommands
# that `nabla` has.
# Usage: tests/readme.sh  (NABLA=path/to/nabla; default the repository's build/nabla)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NABLA=${NABLA:-$ROOT/build/nabla}
README=${README:-$ROOT/README.md}
TIMEOUT=${README_TIMEOUT:-120} # seconds per command; a longer one needs a rule below
export NABLA_THREADS=${NABLA_THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
. "$ROOT/tests/lib.sh"

# The set-up commands at the top of the README, which this test does not run: the
# package installation and the build (done already) and the test suite (which runs this test).
SKIP='^scripts/install-deps\.sh|^make( |$)'

# Commands that need the optional packages of `NABLA_SPEECH=1 scripts/install-deps.sh`
# (the README says so) are skipped, with a note, where those are not installed; the
# default set-up lacks them. The packages are those the README's voices need.
OPTIONAL_PAT='^scripts/speech-corpus\.sh'
OPTIONAL_PKGS=(festival festvox-kallpc16k espeak-ng)
optional_missing() {
    local p
    for p in "${OPTIONAL_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"
    done
}

# How commands that would run for minutes are shortened: every command that a
# pattern (an extended regular expression) matches gets its flags appended. nabla
# takes the last of repeated options, so an appended --train overrides the README's.
rules() {
    cat <<'EOF'
^build/nabla train                  -> --steps 30
^build/nabla charrnn train          -> --steps 20
^build/nabla dqn train              -> --steps 2000
^build/nabla convert .*--pca        -> --train 2000 --test 1000
^build/nabla fit logreg             -> --max-iter 5
^build/nabla hessian                -> --batch 256 --samples 10
EOF
}
RULE_PAT=() RULE_FLAGS=()
while IFS= read -r line; do
    RULE_PAT+=("$(sed 's/[[:space:]]*->.*//' <<<"$line")")
    RULE_FLAGS+=("$(sed 's/.*->[[:space:]]*//' <<<"$line")")
done < <(rules)
RULE_USED=()

# excerpt FILE: FILE, or its first and last 4 lines when longer (a usage error's message comes first).
excerpt() {
    if (($(wc -l <"$1") <= 8)); then cat "$1"; else head -4 "$1"; echo "..."; tail -4 "$1"; fi
}

[[ -x $NABLA ]] || { echo "readme.sh: $NABLA is not an executable (set NABLA or run make)"; echo "0 passed, 1 failed"; exit 1; }
[[ -r $README ]] || { echo "readme.sh: cannot read $README"; echo "0 passed, 1 failed"; exit 1; }

# sh_commands: the lines of the ```sh blocks, continuation lines joined, comments
# (a # outside quotes that starts a word) removed, blank lines dropped.
sh_commands() {
    awk '
        /^```/ { insh = ($0 ~ /^```sh[[:space:]]*$/); next }
        !insh { next }
        {
            line = $0; out = ""; q = ""
            for (i = 1; i <= length(line); i++) {
                c = substr(line, i, 1)
                if (q == "" && c == "#" && (i == 1 || substr(line, i - 1, 1) ~ /[[:space:]]/)) break
                if (q == "" && (c == "\"" || c == "\047")) q = c
                else if (c == q) q = ""
                out = out c
            }
            sub(/[[:space:]]+$/, "", out)
            if (out ~ /\\$/) { cont = cont substr(out, 1, length(out) - 1); next }
            out = cont out; cont = ""
            if (out != "") print out
        }' "$README"
}

# --- the README names nothing outside the repository ---------------------------

for name in deep-learning-notes.md DESIGN.md ../shared; do
    hits=$(grep -nF -- "$name" "$README")
    if [[ -z $hits ]]; then ok "names no $name"; else bad "names no $name" "$hits"; fi
done
# Paths into the repository's folders exist (a program built from PATH.c counts).
missing=()
while IFS= read -r p; do
    p=${p%.}
    [[ -e $ROOT/$p || -e $ROOT/$p.c || $p == *'*'* ]] || missing+=("$p")
done < <(grep -oE '(^|[^A-Za-z0-9_./-])(examples|scripts|tests|bench|include|src|cli|docs|\.ci)/[A-Za-z0-9_./-]*' "$README" |
         sed -E 's/^[^A-Za-z0-9_.]//' | sort -u)
if ((${#missing[@]} == 0)); then ok "paths named exist"; else bad "paths named exist" "missing: ${missing[*]}"; fi

# --- every subcommand used exists -----------------------------------------------

subs=$(grep -oE '(build/nabla|`nabla) [a-z][a-z0-9-]*' "$README" | awk '{ print $2 }' | sort -u)
for s in $subs; do
    if "$NABLA" "$s" --help >/dev/null 2>&1; then ok "nabla $s exists"; else
        bad "nabla $s exists" "\`$NABLA $s --help\` exits $?: $("$NABLA" "$s" --help 2>&1 | head -3)"; fi
done

# --- the commands ------------------------------------------------------------------

# A scratch folder that mirrors the repository: examples/ is copied (commands may
# write next to their input), the rest linked, and build/nabla is $NABLA.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for f in "$ROOT"/* "$ROOT"/.[!.]*; do
    b=$(basename "$f")
    case $b in build* | .git) continue ;; examples) cp -r "$f" "$WORK/" ;; *) ln -s "$f" "$WORK/$b" ;; esac
done
mkdir "$WORK/build" && ln -s "$NABLA" "$WORK/build/nabla"

n=0
while IFS= read -r cmd; do
    if [[ $cmd =~ $SKIP ]]; then echo "skip $cmd"; continue; fi
    if [[ $cmd =~ $OPTIONAL_PAT ]] && lack=$(optional_missing) && [[ -n $lack ]]; then
        echo "skip $cmd (needs $(echo $lack): NABLA_SPEECH=1 scripts/install-deps.sh)"
        continue
    fi
    run=$cmd
    for i in "${!RULE_PAT[@]}"; do
        [[ $run =~ ${RULE_PAT[$i]} ]] || continue
        RULE_USED[$i]=1
        run="$run ${RULE_FLAGS[$i]}"
    done
    n=$((n + 1))
    t0=$SECONDS
    (cd "$WORK" && timeout "$TIMEOUT" bash -o pipefail -c "$run" </dev/null >"$WORK/.out.$n" 2>"$WORK/.err.$n")
    rc=$?
    label="$run ($((SECONDS - t0)) s)"
    if ((rc == 0)); then ok "$label"
    elif ((rc == 124)); then bad "$label" "timed out after $TIMEOUT s: shorten it with a rule in tests/readme.sh"
    else bad "$label" "exit status $rc; stderr:" "$(excerpt "$WORK/.err.$n")"; fi
done < <(sh_commands)
((n > 0)) || bad "the README has sh commands" "no \`\`\`sh block found in $README"
for i in "${!RULE_PAT[@]}"; do
    [[ -n ${RULE_USED[$i]:-} ]] || echo "note: rule '${RULE_PAT[$i]}' matched no command"
done

summary
