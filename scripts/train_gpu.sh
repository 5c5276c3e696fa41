#!/usr/bin/env bash
# The bundled controller's fine-tuning on a CUDA GPU, for when one is at hand (CI never needs it).
#
#   DATA=data_work/dagger/round0/train_data OUT=data_work/gpu_run scripts/train_gpu.sh
#
# Runs the same training `eipl-trt sim dagger` runs on the CPU (sarnn8's architecture, from its weights, the
# dataset's intent labels), on `cuda` with bf16 autocast and a larger batch, every epoch kept for choosing by
# closed-loop success afterwards (eipl_trt.sim.dagger's selection, or `eipl-trt control` on a validation
# seed). EPOCHS=40 fits in about 10 minutes on one H100-class GPU for a 250-episode dataset (an epoch of 417
# episodes took 5.6 s on an H200, README history). DRY_RUN=1 prints the command instead of running it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:?set DATA to an EIPL dataset directory (train/, test/, joint_bounds.npy; targets.npy optional)}
OUT=${OUT:-data_work/gpu_run}
MODEL_DIR=${MODEL_DIR:-engines/sarnn8}
EPOCHS=${EPOCHS:-40}
PY=${PYTHON:-python3}
cmd=("$PY" -m eipl_trt.cli train --model sarnn --data "$DATA" --out "$OUT" --device cuda
     --init-from "$MODEL_DIR/model.pth" --k-dim 8 --rec-dim 50 --im-size 64 --batch-size 32 --lr 0.0005
     --stdev 0.02 --input-mix 0.6 --decay-end 1 --select-by joint --autocast bf16 --keep-epochs
     --epochs "$EPOCHS" --no-progress)
if [[ "${DRY_RUN:-0}" == 1 ]]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
time "${cmd[@]}"
