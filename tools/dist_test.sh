#!/usr/bin/env bash
# Distributed testing on torchrun: tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Python: $PYTHON, else .venv/bin/python next to tools/ if present, else python.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [ARGS...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/tools/launch_env.sh"
require_count GPUS "$GPUS"

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
