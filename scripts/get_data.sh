#!/usr/bin/env bash
# Puts Multi30k (task 1, raw, de-en) into data/multi30k/:
#   train.{de,en}  val.{de,en}  test_2016_flickr.{de,en}
# Source, in order of preference:
#   1. a local copy in ../shared/data/multi30k (relative to the repository root), symlinked;
#   2. a download of the .gz files from github.com/multi30k/dataset (needs curl or wget + gunzip).
# Every file is checked against the sha256 sums below (see shared/data/multi30k/README.md).
# Idempotent: files already in place with the right checksum are left alone.
#
# Usage: scripts/get_data.sh [--copy] [--download]
#   --copy      copy the local files instead of symlinking them
#   --download  ignore the local copy and download
# Environment: MULTI30K_URL overrides the download base URL (e.g. a mirror or file:///path).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/data/multi30k"
LOCAL="$ROOT/../shared/data/multi30k"
URL="${MULTI30K_URL:-https://github.com/multi30k/dataset/raw/master/data/task1/raw}"

declare -A SHA256=(
  [train.de]=2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72
  [train.en]=460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6
  [val.de]=660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660
  [val.en]=1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227
  [test_2016_flickr.de]=4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16
  [test_2016_flickr.en]=399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182
)
FILES=(train.de train.en val.de val.en test_2016_flickr.de test_2016_flickr.en)

MODE=link
PREFER_LOCAL=1
for arg in "$@"; do
  case "$arg" in
    --copy) MODE=copy ;;
    --download) PREFER_LOCAL=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "get_data.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

die() { echo "get_data.sh: error: $*" >&2; exit 1; }
command -v sha256sum >/dev/null || die "sha256sum not found (package coreutils)"

# sum_ok FILE NAME: true when FILE exists and has the expected checksum of NAME.
sum_ok() {
  [[ -f "$1" ]] && [[ "$(sha256sum < "$1" | cut -d' ' -f1)" == "${SHA256[$2]}" ]]
}

fetch() {  # fetch URL OUT
  if command -v curl >/dev/null; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null; then
    wget -q -O "$2" "$1"
  else
    die "neither curl nor wget is installed; install one, or place the files in $LOCAL"
  fi
}

mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  out="$DEST/$f"
  if sum_ok "$out" "$f"; then
    echo "ok        $out"
    continue
  fi
  if [[ -e "$out" || -L "$out" ]]; then
    echo "replacing $out (missing target or wrong checksum)"
    rm -f "$out"
  fi

  if [[ $PREFER_LOCAL == 1 && -f "$LOCAL/$f" ]]; then
    src="$(cd "$LOCAL" && pwd)/$f"
    sum_ok "$src" "$f" || die "local copy $src has the wrong sha256 (expected ${SHA256[$f]}); \
fix it or run with --download"
    if [[ $MODE == copy ]]; then
      cp "$src" "$out"
      echo "copied    $src -> $out"
    else
      ln -sr "$src" "$out"
      echo "linked    $out -> $src"
    fi
  else
    tmp="$(mktemp "$DEST/.$f.XXXXXX.gz")"
    trap 'rm -f "$tmp" "${tmp%.gz}"' EXIT
    echo "download  $URL/$f.gz"
    fetch "$URL/$f.gz" "$tmp" || die "download of $URL/$f.gz failed (no network? place the \
files in $LOCAL instead)"
    gunzip -f "$tmp" || die "$URL/$f.gz is not a valid gzip file"
    sum_ok "${tmp%.gz}" "$f" || die "downloaded $f has the wrong sha256 (expected ${SHA256[$f]}); \
upstream changed?"
    mv "${tmp%.gz}" "$out"
    chmod 644 "$out"
    trap - EXIT
    echo "fetched   $out"
  fi
done

# Line counts must agree pairwise.
for split in train val test_2016_flickr; do
  de=$(wc -l < "$DEST/$split.de"); en=$(wc -l < "$DEST/$split.en")
  [[ $de == "$en" ]] || die "$split.de has $de lines but $split.en has $en"
done
echo "Multi30k ready in $DEST"
