#!/usr/bin/env bash
# Everything LITE_CUDA needs shown on a real GPU, in one command: the GPU tests, the quick start's CUDA program
# against its CPU run, and the GPU benchmark. Logs go to $OUT (default ./gpu-check-out).
#
# Prepare on a machine with network access, from the repository root:
#   ../shared/tools/ort-gpu-slim build .ortgpu        # onnxruntime-gpu for CUDA 13, small enough to carry
#   PY="$(../shared/tools/real-megengine)"; (cd /tmp && "$PY" "$OLDPWD/tools/make_bench_models.py" --periodic)
#   mkdir -p .gpubench && xz -9 -c bench/models/resnet18_periodic.mge > .gpubench/resnet18_periodic.mge.xz
# then run `bash bench/gpu_check.sh` on the GPU machine with .ortgpu and .gpubench next to the checkout
# (GPU_CHECK_QUICK=1: the GPU tests and the example only, without the emulated tests and the benchmark).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -f .ortgpu/activate.sh ]; then source .ortgpu/activate.sh; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
status=0

step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, remember a failure, go on
  local name="$1"; shift
  echo "=== $name: $*"
  local start=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo "=== $name: exit $rc in $((SECONDS - start)) s"
  [ $rc -eq 0 ] || status=1
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; grep -m1 'model name' /proc/cpuinfo
  python3 -c 'import onnxruntime as o, numpy; print("onnxruntime", o.__version__, o.get_available_providers(), "numpy", numpy.__version__)'
} 2>&1 | tee "$OUT/machine.log"

# Separate processes, so that a fault that breaks the CUDA context in one group cannot fail the others.
pytest=(python3 -m pytest -q -p no:cacheprovider -rfEx $(python3 -c "import pytest_timeout" 2>/dev/null && echo --timeout=180))
step tests_host_io "${pytest[@]}" tests/runtime/test_gpu.py -k host_io --junitxml="$OUT/host_io.xml"
step tests_device_inputs "${pytest[@]}" tests/runtime/test_gpu.py -k device_inputs --junitxml="$OUT/device_inputs.xml"
step tests_gpu_api "${pytest[@]}" tests/runtime/test_gpu.py -k "not host_io and not device_inputs and not run_time_lengths" --junitxml="$OUT/gpu_api.xml"
step tests_run_time "${pytest[@]}" tests/runtime/test_gpu.py -k run_time_lengths --junitxml="$OUT/run_time.xml"
[ "${GPU_CHECK_QUICK:-0}" = 1 ] || step tests_emulated "${pytest[@]}" tests/runtime/test_device.py tests/api/test_examples.py
step example_cuda python3 examples/batch_inference.py tests/fixtures/shufflenet_v2.mge --device cuda
step example_cpu python3 examples/batch_inference.py tests/fixtures/shufflenet_v2.mge --device cpu
echo "=== the quick start's CUDA program, CPU vs CUDA:"
paste -d'\n' <(grep ^round "$OUT/example_cpu.log" | sed 's/^/cpu:  /') <(grep ^round "$OUT/example_cuda.log" | sed 's/^/cuda: /')

models=(shufflenet_v2=tests/fixtures/shufflenet_v2.mge)
if [ -f .gpubench/resnet18_periodic.mge.xz ]; then
  xz -dc .gpubench/resnet18_periodic.mge.xz > /tmp/resnet18_periodic.mge && models+=(resnet18=/tmp/resnet18_periodic.mge)
fi
[ "${GPU_CHECK_QUICK:-0}" = 1 ] || step bench python3 bench/bench_gpu.py "${models[@]}" --batch 1,16 --accuracy --json "$OUT/bench.json"
exit $status
