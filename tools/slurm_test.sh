#!/usr/bin/env bash
# Slurm: tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, PYTHON: tools/slurm_srun.sh
set -euo pipefail
USAGE='tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [ARGS...]'
[ $# -ge 4 ] || { echo "usage: $USAGE" >&2; exit 2; }
source "$(dirname "$0")/slurm_srun.sh"
slurm_srun "$1" "$2" test.py "$3" "$4" "${@:5}"
