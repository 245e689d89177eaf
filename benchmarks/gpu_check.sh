#!/usr/bin/env bash
# GPU check of the encoding engine (issue 19, part 4): CUDA parity tests and the encoding
# benchmark with the torch CUDA backend on one whole-brain layer (200,000 voxels, 2,000 scans,
# 768 features, float32, 5 folds, 20 alphas). Writes everything to $OUT (default ./gpu_out).
#
# Meant for a fresh GPU machine that cannot download anything: it uses the python3 there that
# holds a CUDA build of PyTorch (plus numpy, scikit-learn, threadpoolctl, pytest), with this
# repository on PYTHONPATH; no venv, no pip. Wheels under .whl/ (e.g. himalaya, for the peer
# timings) are installed with --no-index when present. Budget: under 8 minutes in all.
#
# Usage (repository root):  bash benchmarks/gpu_check.sh
set -uo pipefail
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NIPYPE_NO_ET=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
{
  date -u; nproc; nvidia-smi || true
  "$PY" -c "import torch, numpy; print('torch', torch.__version__, 'cuda',
    torch.cuda.is_available(), 'numpy', numpy.__version__, 'tf32 matmul',
    torch.backends.cuda.matmul.allow_tf32)" 2>&1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. CUDA parity tests (skipped without CUDA elsewhere): numpy vs torch-cuda, exact vs full.
#    --noconftest: the pipeline fixtures (nipype, templateflow) are not needed by these tests.
timeout 240 "$PY" -m pytest -q --noconftest -p no:cacheprovider -rs \
  "tests/encoding/test_ridge.py::test_cuda_matches_numpy" \
  "tests/encoding/test_prune.py::test_exact_search_on_cuda_returns_the_full_grid_choice" \
  "tests/encoding/test_prune.py::test_bounds_contain_the_full_grid_values" \
  2>&1 | tee "$OUT/cuda_tests.txt"
echo "pytest exit: ${PIPESTATUS[0]}" | tee -a "$OUT/cuda_tests.txt"

# 2. One whole-brain layer on the GPU: exact (default) and full, torch CUDA backend; peers
#    (himalaya with numpy on the CPU cores) only if importable, on 10,000 voxels, extrapolated.
PEERS=""
"$PY" -c "import himalaya" 2>/dev/null && PEERS="himalaya"
timeout 330 "$PY" benchmarks/encoding.py --n-samples 2000 --n-features 768 --n-voxels 200000 \
  --dtype float32 --backends torch --device cuda --inner loo --alpha-search exact,full \
  --peers "$PEERS" --peer-voxels 10000 2>&1 | tee "$OUT/bench_cuda_200k.txt"
echo "benchmark exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench_cuda_200k.txt"
