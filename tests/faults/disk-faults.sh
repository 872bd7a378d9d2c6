#!/usr/bin/env bash
# Disk faults (issue 17 item 5), on a tmpfs the test mounts (a small file system):
#  - fit, merge and export that run out of space end with a clear error naming the path and the
#    cause, leave no partial file (no *.tmp, every part file valid), and after space is freed the
#    rerun gives the result of an uninterrupted run;
#  - a read-only output directory gets a clear error before any work starts.
# Exit 77 (skipped) where no tmpfs can be mounted (not root, or a container without the right).
set -euo pipefail
fb=$1; src=$2
tmp=$(mktemp -d)
small="$tmp/small"
mkdir -p "$small"
cleanup() { mountpoint -q "$small" && umount "$small"; rm -rf "$tmp"; }
trap cleanup EXIT
if ! mount -t tmpfs -o size=3m tmpfs "$small" 2>"$tmp/mount.err"; then
  echo "skipped: cannot mount a small tmpfs to fill up ($(cat "$tmp/mount.err"); needs root)"
  exit 77
fi
fail() { echo "FAIL: $*"; exit 1; }
resize() { mount -o "remount,size=$1" "$small"; }
# Options that keep the fit short and deterministic: 2 images per batch and per part file.
fitopts=(--model "$src/samples/models/default.h5" --shard 0/1 --steps 2 --schedule joint --batch 2 --part-size 2
         --threads 2 --progress none)
"$fb" index --root "$src/samples/300W-LP" --out "$tmp/m.jsonl" --progress none >/dev/null

# The uninterrupted run, on the ordinary disk.
"$fb" fit --manifest "$tmp/m.jsonl" --out "$tmp/ref" "${fitopts[@]}" >/dev/null 2>&1
ref="$tmp/ref/shard-00000-of-00001.h5"
[ -f "$ref" ] || fail "reference fit wrote no shard"
n=$(h5dump -a /num_images "$ref" | grep -o '(0): [0-9]*' | grep -o '[0-9]*$')

same_shard() {  # the fitted data of two shard files agree (ids, latents, maps, vertices, status)
  for d in /images/id /images/status /latents/f_shape /latents/f_albedo /latents/projection /latents/lighting \
           /maps/shape /maps/albedo /vertices/model /fit/final_loss; do
    h5diff -d 1e-5 "$1" "$2" "$d" "$d" >/dev/null || fail "$d differs between $1 and $2"
  done
}
no_partial() {  # no *.tmp under the directory; every part file valid
  if find "$1" -name '*.tmp' | grep -q .; then fail "partial files left: $(find "$1" -name '*.tmp')"; fi
  for p in $(find "$1" -name 'part-*.h5'); do "$fb" validate "$p" >/dev/null || fail "corrupt part file $p"; done
}

# --- fit: 3 MiB hold a few part files, not the shard.
set +e
"$fb" fit --manifest "$tmp/m.jsonl" --out "$small/fit" "${fitopts[@]}" >"$tmp/fit1.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "fit on a full disk exited 0"
[ "$rc" -lt 128 ] || fail "fit on a full disk crashed (exit $rc): $(tail -3 "$tmp/fit1.log")"
grep -q "$small/fit" "$tmp/fit1.log" || grep -q "small/fit" "$tmp/fit1.log" || fail "fit error names no path: $(tail -3 "$tmp/fit1.log")"
grep -q "no space left" "$tmp/fit1.log" || fail "fit error does not say the disk is full: $(tail -3 "$tmp/fit1.log")"
no_partial "$small/fit"
parts=$(find "$small/fit" -name 'part-*.h5' | wc -l)
echo "fit on a full disk: exit $rc, $parts part file(s) kept: $(grep error "$tmp/fit1.log" | tail -1)"
resize 64m
"$fb" fit --manifest "$tmp/m.jsonl" --out "$small/fit" "${fitopts[@]}" >"$tmp/fit2.log" 2>&1 || fail "fit rerun: $(tail -3 "$tmp/fit2.log")"
if [ "$parts" -gt 0 ]; then grep -q "already done" "$tmp/fit2.log" || fail "the rerun did not resume from the kept parts"; fi
same_shard "$ref" "$small/fit/shard-00000-of-00001.h5"
echo "fit rerun after freeing space: same result as the uninterrupted fit ($n images)"

# --- merge (a full copy) onto a disk with less room than the merged file needs.
"$fb" merge "$tmp/ref" --out "$tmp/ref-merged.h5" --copy >/dev/null 2>&1
size_kib=$(( $(stat -c %s "$tmp/ref-merged.h5") / 1024 ))
rm -rf "$small"/*
resize "$(( size_kib / 2 ))k"
set +e
"$fb" merge "$tmp/ref" --out "$small/merged.h5" --copy >"$tmp/merge1.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "merge on a full disk: exit $rc: $(tail -3 "$tmp/merge1.log")"
grep -q "small/merged.h5" "$tmp/merge1.log" || fail "merge error names no path: $(tail -3 "$tmp/merge1.log")"
grep -q "no space left" "$tmp/merge1.log" || fail "merge error does not say the disk is full: $(tail -3 "$tmp/merge1.log")"
[ ! -e "$small/merged.h5" ] && [ ! -e "$small/merged.h5.tmp" ] || fail "merge left a partial file: $(ls "$small")"
echo "merge on a full disk: exit $rc: $(grep error "$tmp/merge1.log" | tail -1)"
resize 64m
"$fb" merge "$tmp/ref" --out "$small/merged.h5" --copy >/dev/null 2>&1 || fail "merge rerun failed"
same_shard "$tmp/ref-merged.h5" "$small/merged.h5"
echo "merge rerun after freeing space: same result"

# --- export (meshes with textures) onto a disk that fills during the export.
"$fb" export glb "$ref" --out "$tmp/ref-glb" --progress none >/dev/null 2>&1
need_kib=$(du -sk "$tmp/ref-glb" | cut -f1)
rm -rf "$small"/*
resize "$(( need_kib / 2 ))k"
set +e
"$fb" export glb "$ref" --out "$small/glb" --progress none >"$tmp/export1.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "export on a full disk: exit $rc: $(tail -3 "$tmp/export1.log")"
grep -q "small/glb" "$tmp/export1.log" || fail "export error names no path: $(tail -3 "$tmp/export1.log")"
grep -q "no space left" "$tmp/export1.log" || fail "export error does not say the disk is full: $(tail -3 "$tmp/export1.log")"
if find "$small/glb" -name '*.tmp' | grep -q .; then fail "export left partial files"; fi
for f in "$small"/glb/*.glb; do
  [ -e "$f" ] || continue
  cmp -s "$f" "$tmp/ref-glb/$(basename "$f")" || fail "export left a corrupt $(basename "$f")"
done
echo "export on a full disk: exit $rc:"; grep -v "^libpng" "$tmp/export1.log" | tail -4
resize 64m
"$fb" export glb "$ref" --out "$small/glb" --progress none >/dev/null 2>&1 || fail "export rerun failed"
for f in "$tmp"/ref-glb/*.glb "$tmp"/ref-glb/*.png; do
  cmp -s "$f" "$small/glb/$(basename "$f")" || fail "export rerun: $(basename "$f") differs"
done
echo "export rerun after freeing space: the same files"

# --- a read-only output directory: a clear error before any work starts.
rm -rf "$small"/*
mkdir -p "$small/ro"
mount -o remount,ro "$small"
set +e
start=$(date +%s.%N)
"$fb" fit --manifest "$tmp/m.jsonl" --out "$small/ro" "${fitopts[@]}" >"$tmp/ro.log" 2>&1
rc=$?
set -e
mount -o remount,rw "$small"
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "fit into a read-only directory: exit $rc"
grep -q "small/ro" "$tmp/ro.log" && grep -qi "read-only" "$tmp/ro.log" || fail "unclear error: $(tail -3 "$tmp/ro.log")"
grep -q "images to do" "$tmp/ro.log" && fail "fit started working before noticing the directory is not writable"
echo "read-only output directory: $(grep error "$tmp/ro.log" | tail -1)"
echo "all disk-fault checks passed"
