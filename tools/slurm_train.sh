#!/usr/bin/env bash
# Slurm: tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [ARGS...]
# GPUS, GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS, PYTHON: tools/slurm_srun.sh
set -euo pipefail
USAGE='tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [ARGS...]'
[ $# -ge 4 ] || { echo "usage: $USAGE" >&2; exit 2; }
source "$(dirname "$0")/slurm_srun.sh"
slurm_srun "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"
