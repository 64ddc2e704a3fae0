#!/usr/bin/env bash
# One GPU session on a machine without network (see docs/performance.md): install the carried
# wheels (.whl/, git-ignored; list in docs/performance.md), then run the GPU benchmarks, each
# under its own time cap, writing into $OUT as they go. Usage: bash benchmarks/gpu_session.sh [SECTIONS]
# SECTIONS: any of first_packet gpu compile quick later (default: the first three, compile last);
# later: what the third session built without a GPU (batched and compiled decoding, packing,
# compiled layers) beside the baseline, in one call.
set -u
OUT=${OUT:-results}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"; } > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
sections=${1:-"first_packet gpu compile"}
run() { local name=$1 cap=$2; shift 2; echo "== $name (cap ${cap}s)"; timeout "$cap" "$@" > "$OUT/$name.txt" 2>&1; echo "rc=$?" >> "$OUT/$name.txt"; tail -n 25 "$OUT/$name.txt"; }
for s in $sections; do
  case $s in
    first_packet)
      run first_packet_7b 240 python3 benchmarks/first_packet.py --device cuda --preset nexus-o-7b --reply-tokens 40 --json
      run first_packet_7b_decoder 60 python3 benchmarks/first_packet.py --device cuda --preset nexus-o-7b --decoder-only --frames 512 --json ;;
    gpu)
      [ -f benchmarks/gpu.py ] && run gpu_7b 380 python3 benchmarks/gpu.py --device cuda --preset nexus-o-7b --json --deadline 360 --out "$OUT/gpu" ;;
    later)
      run gpu_7b_later 330 python3 benchmarks/gpu.py --device cuda --preset nexus-o-7b --json --deadline 310 --out "$OUT/gpu" --sections env,build,train,train_packed,text_project,text_batch,compile,train_compiled --variants baseline,liger_ce,selective_ckpt
      run first_packet_7b_compiled 110 python3 benchmarks/first_packet.py --device cuda --preset nexus-o-7b --reply-tokens 40 --runs 2 --compile --json ;;
    quick)  # the headline figures only (a short second session)
      run first_packet_7b 120 python3 benchmarks/first_packet.py --device cuda --preset nexus-o-7b --reply-tokens 40 --json
      run gpu_7b_quick 150 python3 benchmarks/gpu.py --device cuda --preset nexus-o-7b --json --deadline 140 --out "$OUT/gpu" --sections env,build,text,train,text_project --variants frozen_backward,baseline,liger_ce,selective_ckpt ;;
    compile)
      run first_packet_7b_compiled 110 python3 benchmarks/first_packet.py --device cuda --preset nexus-o-7b --reply-tokens 40 --runs 2 --compile --json ;;
  esac
done
