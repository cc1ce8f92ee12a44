#!/usr/bin/env bash
# Builds the default dialogue corpus of `nabla chat` on a fresh Debian machine:
#   scripts/dialogue-corpus.sh [OUT_DIR]
# For each source package, the few text files it needs are copied from the
# installed package, or, when it is not installed, the .deb is fetched with
# `apt-get download` (no root needed, kept in a cache) and only those files are
# extracted. Then `nabla chat corpus SRC --out OUT_DIR` writes train.csv,
# valid.csv, test.csv and counts.json (README.md, "The default dialogue corpus").
#   OUT_DIR      default ${NABLA_DATA:-~/.cache/nabla}/dialogue
#   NABLA        the nabla command (default: build/nabla if there, else nabla)
#   NABLA_DATA   data folder (default ~/.cache/nabla); the .deb files go to
#                $NABLA_DATA/debs, the extracted files to $NABLA_DATA/dialogue-src
#   SEED         seed of the split (default 1)
set -euo pipefail
DATA=${NABLA_DATA:-$HOME/.cache/nabla}
OUT=${1:-$DATA/dialogue}
DEBS=$DATA/debs
SRC=$DATA/dialogue-src
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${NABLA:-}" ]; then
  if [ -x "$HERE/build/nabla" ]; then NABLA=$HERE/build/nabla; else NABLA=nabla; fi
fi

# package -> the files it contributes (tar wildcards; '*' also matches '/')
declare -A FILES
for c in did dm dw ei httt l low nr sof sota sotbe thot trow tsg ttb utbs; do
  FILES[wesnoth-1.16-$c]='./usr/share/games/wesnoth/1.16/data/campaigns/*.cfg'
done
FILES[endless-sky-data]='./usr/share/games/endless-sky/data/*.txt'
FILES[fortunes]='./usr/share/games/fortunes/*'
FILES[fortunes-min]='./usr/share/games/fortunes/*'      # fortunes, literature, riddles
FILES[freedroidrpg-data]='./usr/share/freedroidrpg/data/*/dialogs/*.lua'
FILES[r-cran-janeaustenr]='./usr/lib/R/site-library/janeaustenr/data/Rdata.rdb'
FILES[sword-text-web]='./usr/share/sword/modules/texts/ztext/engWEB2015eb/*'
EXCLUDE=(--exclude='*.dat' --exclude='*.u8')   # fortune indexes and links

mkdir -p "$DEBS" "$SRC" "$(dirname "$OUT")"
for pkg in $(printf '%s\n' "${!FILES[@]}" | sort); do
  pat=${FILES[$pkg]}
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
    # installed: copy its files that match the pattern (as tar would name them)
    dpkg -L "$pkg" | while read -r f; do
      if [ ! -f "$f" ] || [ -L "$f" ]; then continue; fi
      # shellcheck disable=SC2254  # $pat is a pattern on purpose
      case ".$f" in $pat) case "$f" in *.dat|*.u8) ;; *) printf '%s\n' "${f#/}" ;; esac ;; esac
    done > "$SRC/.list"
    tar -C / -cf - -T "$SRC/.list" | tar -C "$SRC" -xf -
    echo "$pkg: $(wc -l < "$SRC/.list") files from the installed package"
  else
    debs=("$DEBS/${pkg}"_*.deb)
    if [ ! -e "${debs[0]}" ]; then
      (cd "$DEBS" && apt-get download -q "$pkg")
      debs=("$DEBS/${pkg}"_*.deb)
    fi
    deb=${debs[0]}
    dpkg-deb --fsys-tarfile "$deb" | tar -C "$SRC" -x --wildcards "${EXCLUDE[@]}" "$pat"
    echo "$pkg: extracted from $(basename "$deb")"
  fi
done
rm -f "$SRC/.list"
echo "sources: $(du -sh "$SRC" | cut -f1) in $SRC"
"$NABLA" chat corpus "$SRC" --out "$OUT" --seed "${SEED:-1}"
