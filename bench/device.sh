#!/usr/bin/env bash
# The WebGPU check for a machine with a GPU, run from anywhere; finishes in under 5 minutes.
#
#   1. adapter and device limits/features
#   2. correctness of the webgpu executor against the reference (tests/kernels/webgpu)
#   3. decode tok/s at batch 1 and 64 for a 1.1B-parameter dummy-weight model (one token
#      per read-back, and decoding 8 ahead), sampling costs, and the
#      share of the GPU's memory bandwidth achieved (bench/webgpu.ts)
#   4. RelayAttention kernel speedup against the IO bound, and end-to-end decode
#      throughput with a 2,048-token shared prompt at 32 requests (bench/relay.ts)
#
# Needs: deno 2.9 on PATH (or $DENO), the Vulkan loader (libvulkan1) and the GPU's Vulkan
# driver, and the npm packages of deno.json already in $DENO_DIR (the machine may be
# offline). Writes everything to stdout and, when $OUT is set, to $OUT/device.txt; copy that
# file into docs/ (docs/WEBGPU.md, "Results on a GPU").
#
# Optional: PEAK_GBS (the GPU's data-sheet memory bandwidth; guessed from nvidia-smi for
# common data-centre GPUs), MODEL (default tinyllama-1.1b).
set -uo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" NO_COLOR=1
DENO="${DENO:-deno}"
MODEL="${MODEL:-tinyllama-1.1b}"
log="${OUT:+$OUT/device.txt}"
[ -n "$log" ] && mkdir -p "$OUT" && : >"$log"

say() { if [ -n "$log" ]; then echo "$@" | tee -a "$log"; else echo "$@"; fi; }
# Runs a step under a time limit, keeping its output; a failed step does not stop the rest.
step() {
  local limit=$1 title=$2
  shift 2
  say ""
  say "== $title"
  local start=$SECONDS
  if [ -n "$log" ]; then
    timeout "$limit" "$@" 2>&1 | grep -v XDG_RUNTIME_DIR | tee -a "$log"
  else
    timeout "$limit" "$@" 2>&1 | grep -v XDG_RUNTIME_DIR
  fi
  local rc=${PIPESTATUS[0]}
  say "-- $title: exit $rc, $((SECONDS - start)) s"
}

if ! command -v "$DENO" >/dev/null; then
  say "deno not found: put deno 2.9 on PATH or set DENO"
  exit 2
fi
say "date: $(date -u +%FT%TZ); $("$DENO" --version | head -1); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
if command -v nvidia-smi >/dev/null; then
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
  say "nvidia-smi: $gpu"
  if [ -z "${PEAK_GBS:-}" ]; then
    case "$gpu" in
      *H200*) PEAK_GBS=4800 ;;
      *H100*PCIe*) PEAK_GBS=2000 ;;
      *H100*) PEAK_GBS=3350 ;;
      *A100*80GB*) PEAK_GBS=2039 ;;
      *A100*) PEAK_GBS=1555 ;;
      *L40S*) PEAK_GBS=864 ;;
    esac
  fi
fi
peak=()
[ -n "${PEAK_GBS:-}" ] && peak=(--peak-gbs "$PEAK_GBS") && say "data-sheet bandwidth: $PEAK_GBS GB/s"

step 20 "adapter" "$DENO" eval '
  const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!a) { console.log("no WebGPU adapter: install libvulkan1 and the GPU Vulkan driver"); Deno.exit(3); }
  const i = a.info;
  console.log(JSON.stringify({ vendor: i.vendor, architecture: i.architecture, device: i.device,
    description: i.description, isFallbackAdapter: i.isFallbackAdapter }));
  console.log("features:", [...a.features].join(","));
  const l = {}; for (const k in a.limits) l[k] = a.limits[k]; console.log(JSON.stringify(l));'

step 60 "correctness against the reference executor" \
  "$DENO" test -A --quiet tests/kernels/webgpu/ tests/kernels/relay/

step 110 "decode throughput and bandwidth, $MODEL" \
  "$DENO" run -A bench/webgpu.ts --model "$MODEL" --batches 1,64 --context 128 \
  --steps 18 --budget-s 10 "${peak[@]}"

step 90 "RelayAttention (Llama-2-7B layer: 32 heads x 128) and end-to-end relay" \
  "$DENO" run -A bench/relay.ts --paths webgpu --heads 32 --kv-heads 32 --head-dim 128 \
  --budget-s 2 --model small --e2e-prompt 2048 --e2e-batch 32 --e2e-steps 16

say ""
say "total: $SECONDS s"
