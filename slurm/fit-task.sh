#!/usr/bin/env bash
# The body of one fit array task, shared by fit-array.sbatch (GPU) and
# fit-array-cpu.sbatch (CPU); they `source` it. Runs `facebatch fit` on shard
# $SLURM_ARRAY_TASK_ID of $FACEBATCH_NUM_SHARDS, forwards SLURM's warning signal
# (--signal=B:USR1@<s>, delivered to this batch shell) and SIGTERM to the
# binary, waits for it, and requeues the task when the fit job exits 75
# ("incomplete, requeue me": docs/fitjob.md) so that it resumes from its closed
# parts. Variables (exported by slurm/submit.sh, or set before sbatch):
#   FACEBATCH              the facebatch binary (default: facebatch on PATH)
#   FACEBATCH_MANIFEST     manifest written by `facebatch index` (required)
#   FACEBATCH_MODEL        model file (required)
#   FACEBATCH_OUT          fit output directory (required; shard files, markers, parts)
#   FACEBATCH_NUM_SHARDS   N, explicit (required: a resubmitted subset changes SLURM_ARRAY_TASK_COUNT)
#   FACEBATCH_FIT_ARGS     more `facebatch fit` options, e.g. "--steps 50 --batch 8"
#   FACEBATCH_DEVICE       cpu | cuda (default set by the sbatch script)
#   FACEBATCH_MAX_REQUEUES requeue at most this many times (default 10)
# Network file systems (NFS, Lustre, GPFS) without POSIX lock support make HDF5
# fail to open files: export HDF5_USE_FILE_LOCKING=FALSE before sbatch (each
# shard file has a single writer, guarded by facebatch's own shard lock).
set -uo pipefail
: "${FACEBATCH:=facebatch}"
: "${FACEBATCH_MANIFEST:?set FACEBATCH_MANIFEST (see slurm/README.md)}"
: "${FACEBATCH_MODEL:?set FACEBATCH_MODEL}"
: "${FACEBATCH_OUT:?set FACEBATCH_OUT}"
: "${FACEBATCH_NUM_SHARDS:?set FACEBATCH_NUM_SHARDS (explicit shard count)}"
: "${FACEBATCH_DEVICE:=cpu}"
: "${FACEBATCH_MAX_REQUEUES:=10}"
task="${SLURM_ARRAY_JOB_ID:-?}_${SLURM_ARRAY_TASK_ID:-?}"
say() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) fit-task [slurm $task] $*"; }

say "start: job ${SLURM_JOB_ID:-?} on $(hostname), restart ${SLURM_RESTART_COUNT:-0}," \
    "shard ${SLURM_ARRAY_TASK_ID:-?}/$FACEBATCH_NUM_SHARDS, device $FACEBATCH_DEVICE," \
    "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}, cpus ${SLURM_CPUS_PER_TASK:-<all>}"
# shellcheck disable=SC2086  # FACEBATCH_FIT_ARGS is a list of options
"$FACEBATCH" fit --manifest "$FACEBATCH_MANIFEST" --model "$FACEBATCH_MODEL" --out "$FACEBATCH_OUT" \
  --shard auto --num-shards "$FACEBATCH_NUM_SHARDS" --device "$FACEBATCH_DEVICE" \
  --threads "${SLURM_CPUS_PER_TASK:-0}" --progress log ${FACEBATCH_FIT_ARGS:-} &
child=$!
say "fit pid $child"
forward() {
  say "received SIG$1: forwarding it to fit (pid $child); it finishes or drops the batch in flight and exits 75"
  kill -s "$1" "$child" 2>/dev/null || true
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
rc=0
wait "$child" || rc=$?
# `wait` returns early (128+n) when a trapped signal arrives: wait for the real exit status.
while kill -0 "$child" 2>/dev/null; do
  rc=0
  wait "$child" || rc=$?
done
trap - USR1 TERM
case "$rc" in
  0) say "shard complete"; exit 0 ;;
  3) say "shard complete; some images failed (recorded in the shard file, see facebatch status)"; exit 0 ;;
  75)
    restarts=${SLURM_RESTART_COUNT:-0}
    if [ -n "${SLURM_JOB_ID:-}" ] && [ "$restarts" -lt "$FACEBATCH_MAX_REQUEUES" ]; then
      say "fit incomplete (exit 75): requeueing $task (restart $((restarts + 1)) of at most $FACEBATCH_MAX_REQUEUES)"
      scontrol requeue "$SLURM_JOB_ID" && exit 0
      say "scontrol requeue failed: resubmit shard ${SLURM_ARRAY_TASK_ID:-?} (facebatch status $FACEBATCH_OUT)"
    else
      say "fit incomplete (exit 75) and not requeued (restart $restarts): resubmit it (facebatch status $FACEBATCH_OUT)"
    fi
    exit 75 ;;
  *) say "fit failed with exit code $rc"; exit "$rc" ;;
esac
