#!/usr/bin/env bash
# The whole SLURM flow on the bundled samples through a real (private, single-node)
# SLURM cluster, in one command:
#
#   bash scripts/slurm-demo.sh [OUT_DIR]        (default OUT_DIR: slurm-demo/; needs build/facebatch)
#
# 1. installs slurm-wlm when missing (apt; root or sudo) and starts slurmctld + slurmd in
#    OUT_DIR/cluster (scripts/slurm-cluster.sh: auth/none, private ports, nothing in /etc/slurm);
# 2. slurm/submit.sh --cpu: indexes samples/300W-LP, submits the fit array over 4 shards
#    (slurm/fit-array-cpu.sbatch) and the merge job (slurm/merge.sbatch, afterany);
# 3. waits, prints `facebatch status` and the merge log, inspects OUT_DIR/fit/merged.h5;
# 4. `facebatch export obj OUT_DIR/fit/merged.h5 --out OUT_DIR/obj` when this binary has
#    the export command (skipped with a message otherwise);
# 5. stops the cluster (by pid, also on errors and Ctrl-C).
# Model: ${FACEBATCH_MODEL:-samples/models/default.h5}; without it an UNTRAINED demo model is
# created (the fits then show the pipeline, not meaningful faces). FACEBATCH_STEPS (default 10)
# fit iterations per image; FACEBATCH (default build/facebatch) the binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-slurm-demo}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
FB=${FACEBATCH:-$ROOT/build/facebatch}
[ -x "$FB" ] || { echo "slurm-demo: no binary at $FB (build first: bash scripts/setup.sh)" >&2; exit 1; }
STEPS=${FACEBATCH_STEPS:-10}
# shellcheck source=slurm-cluster.sh
source "$ROOT/scripts/slurm-cluster.sh"
slurm_cluster_install || { echo "slurm-demo: SLURM is not available (see above)" >&2; exit 1; }
trap slurm_cluster_stop EXIT INT TERM
slurm_cluster_start "$OUT/cluster"

MODEL=${FACEBATCH_MODEL:-$ROOT/samples/models/default.h5}
if [ ! -f "$MODEL" ]; then
  MODEL=$OUT/untrained-demo-model.h5
  echo "##################################################################################" >&2
  echo "## WARNING: no trained model at ${FACEBATCH_MODEL:-samples/models/default.h5}: using an" >&2
  echo "## UNTRAINED demo model ($MODEL): the fits show the pipeline, NOT meaningful faces." >&2
  echo "##################################################################################" >&2
  [ -f "$MODEL" ] || "$FB" model init --preset demo --seed 0 --out "$MODEL"
fi

text=$("$ROOT/slurm/submit.sh" --facebatch "$FB" --cpu --corpus "$ROOT/samples/300W-LP" --manifest "$OUT/300w-lp.jsonl" \
  --model "$MODEL" --out "$OUT/fit" --shards 4 --fit-args "--steps $STEPS" --sbatch-args "--cpus-per-task=1 --mem=1G")
echo "$text"
read -r fit merge < <(echo "$text" | sed -n 's/^FACEBATCH_JOBS fit=\([0-9]*\) merge=\([0-9]*\)$/\1 \2/p')
echo "waiting for the array job $fit and the merge job $merge ..."
while [ -n "$(squeue -h -j "$fit,$merge" -o '%i' 2>/dev/null)" ]; do
  squeue -h -j "$fit,$merge" -o '  %i %T %M' 2>/dev/null | tr '\n' ' '
  echo
  sleep 5
done
"$FB" status "$OUT/fit" --num-shards 4
echo "--- merge log"
cat "$OUT/fit/logs/merge_${merge}.log"
[ -f "$OUT/fit/merged.h5" ] || { echo "slurm-demo: no merged file (see the logs in $OUT/fit/logs)" >&2; exit 1; }
"$FB" inspect "$OUT/fit/merged.h5" | sed -n "1,12p"
if "$FB" help 2>&1 | grep -qE '^\s*export\b'; then
  "$FB" export obj "$OUT/fit/merged.h5" --out "$OUT/obj"
  echo "meshes: $OUT/obj"
else
  echo "slurm-demo: this facebatch has no 'export' command yet: skipping the OBJ export (the merged HDF5 is $OUT/fit/merged.h5)"
fi
echo "slurm-demo done: logs $OUT/fit/logs, shards and merged.h5 in $OUT/fit"
