# Sourced by tools/slurm_train.sh and tools/slurm_test.sh (mmdet's interface).
# Environment: GPUS (processes in all, default 8), GPUS_PER_NODE (8),
# CPUS_PER_TASK (5), SRUN_ARGS (more srun options), PYTHON (default: the
# project's .venv python when present, else python).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# slurm_srun PARTITION JOB_NAME TOOL [TOOL ARGS...]: TOOL under srun,
# one process per GPU, with mmengine's launcher='slurm'.
slurm_srun() {
    local partition=$1 job_name=$2 tool=$3
    shift 3
    local python=${PYTHON:-python}
    [ -n "${PYTHON:-}" ] || [ ! -x "$ROOT/.venv/bin/python" ] ||
        python="$ROOT/.venv/bin/python"
    local gpus_per_node=${GPUS_PER_NODE:-8}
    # shellcheck disable=SC2086  # SRUN_ARGS: several options in one string
    PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
    srun -p "$partition" --job-name="$job_name" --gres=gpu:"$gpus_per_node" \
        --ntasks="${GPUS:-8}" --ntasks-per-node="$gpus_per_node" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "$python" -u "$ROOT/tools/$tool" "$@" --launcher slurm
}
