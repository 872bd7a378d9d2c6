#!/usr/bin/env bash
# Submits a whole facebatch fit to SLURM: index (if the manifest does not exist
# yet), the fit array over N shards, and the merge job with an afterany
# dependency on the array. Prints the job ids and what to watch.
#
#   slurm/submit.sh --manifest M.jsonl [--corpus ROOT] --model MODEL.h5 --out DIR --shards N
#                   [--cpu] [--array LIST] [--fit-args "..."] [--merge-args "..."] [--merged FILE]
#                   [--logs DIR] [--sbatch-args "..."] [--facebatch BIN] [--no-merge]
#
#   --corpus ROOT   run `facebatch index --root ROOT --out M.jsonl` first when M.jsonl does not exist
#   --cpu           fit-array-cpu.sbatch instead of fit-array.sbatch (one GPU per task)
#   --array LIST    only these shards (e.g. the list `facebatch status DIR` prints to resubmit); default 0-(N-1)
#   --fit-args      more `facebatch fit` options ("--steps 50 --batch 8")
#   --merge-args    more `facebatch merge` options ("--copy", "--allow-missing")
#   --merged FILE   merged file (default DIR/merged.h5)
#   --logs DIR      SLURM logs fit_<array job>_<task>.log and merge_<job>.log (default DIR/logs)
#   --sbatch-args   extra sbatch options for both jobs ("--partition gpu --account abc")
#   --facebatch BIN the facebatch binary (default: facebatch on PATH, else build/facebatch)
# Environment passed to the jobs: everything exported (sbatch --export=ALL), e.g.
# HDF5_USE_FILE_LOCKING=FALSE on network file systems without POSIX locks.
set -euo pipefail
SLURM_DIR=$(cd "$(dirname "$0")" && pwd)
manifest="" corpus="" model="" out="" shards="" cpu=0 array="" fit_args="" merge_args="" merged="" logs=""
sbatch_args="" fb="" merge=1
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --manifest) manifest=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --cpu) cpu=1; shift ;;
    --array) array=$2; shift 2 ;;
    --fit-args) fit_args=$2; shift 2 ;;
    --merge-args) merge_args=$2; shift 2 ;;
    --merged) merged=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --sbatch-args) sbatch_args=$2; shift 2 ;;
    --facebatch) fb=$2; shift 2 ;;
    --no-merge) merge=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "submit.sh: unknown option $1" >&2; usage ;;
  esac
done
[ -n "$manifest" ] && [ -n "$model" ] && [ -n "$out" ] && [ -n "$shards" ] || { echo "submit.sh: --manifest, --model, --out and --shards are required" >&2; usage; }
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: --shards must be a positive integer" >&2; exit 2; }
if [ -z "$fb" ]; then
  fb=$(command -v facebatch || true)
  [ -n "$fb" ] || fb="$SLURM_DIR/../build/facebatch"
fi
[ -x "$fb" ] || { echo "submit.sh: no facebatch binary at '$fb' (--facebatch BIN)" >&2; exit 2; }
abs() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
fb=$(abs "$fb")
mkdir -p "$out"
out=$(cd "$out" && pwd)
logs=${logs:-$out/logs}
mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
merged=${merged:-$out/merged.h5}
[ -f "$model" ] || { echo "submit.sh: no model file $model" >&2; exit 2; }
model=$(abs "$model")
if [ ! -f "$manifest" ]; then
  [ -n "$corpus" ] || { echo "submit.sh: $manifest does not exist; give --corpus ROOT to index it" >&2; exit 2; }
  echo "indexing $corpus -> $manifest"
  "$fb" index --root "$corpus" --out "$manifest" --progress log
fi
manifest=$(abs "$manifest")
"$fb" shards --manifest "$manifest" --num-shards "$shards" | sed -n "1,6p"  # sed reads all: no SIGPIPE
array=${array:-0-$((shards - 1))}

export FACEBATCH="$fb" FACEBATCH_MANIFEST="$manifest" FACEBATCH_MODEL="$model" FACEBATCH_OUT="$out"
export FACEBATCH_NUM_SHARDS="$shards" FACEBATCH_FIT_ARGS="$fit_args" FACEBATCH_MERGE_ARGS="$merge_args"
export FACEBATCH_MERGED="$merged" FACEBATCH_SLURM_DIR="$SLURM_DIR"
script="$SLURM_DIR/fit-array.sbatch"
[ "$cpu" -eq 1 ] && script="$SLURM_DIR/fit-array-cpu.sbatch"
# shellcheck disable=SC2086
fit_job=$(sbatch --parsable --export=ALL --array="$array" --output="$logs/fit_%A_%a.log" --error="$logs/fit_%A_%a.log" \
  $sbatch_args "$script")
fit_job=${fit_job%%;*}
echo "fit array job: $fit_job (shards $array of $shards, $(basename "$script"))"
merge_job=""
if [ "$merge" -eq 1 ]; then
  # shellcheck disable=SC2086
  merge_job=$(sbatch --parsable --export=ALL --dependency="afterany:$fit_job" --kill-on-invalid-dep=no \
    --output="$logs/merge_%j.log" --error="$logs/merge_%j.log" $sbatch_args "$SLURM_DIR/merge.sbatch")
  merge_job=${merge_job%%;*}
  echo "merge job:     $merge_job (after the array: afterany:$fit_job) -> $merged"
fi
cat <<EOT
watch:
  squeue -j $fit_job${merge_job:+,$merge_job}
  tail -f $logs/fit_${fit_job}_*.log
  $fb status $out --num-shards $shards          # done / running / failed / missing, and the --array list to resubmit
${merge_job:+  cat $logs/merge_${merge_job}.log}
resubmit what failed (it resumes from closed parts), then merge again:
  $0 --manifest $manifest --model $model --out $out --shards $shards$( [ "$cpu" -eq 1 ] && echo " --cpu") --array LIST${fit_args:+ --fit-args \"$fit_args\"}
EOT
echo "FACEBATCH_JOBS fit=$fit_job merge=${merge_job:-none}"
