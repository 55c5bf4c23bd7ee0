#!/usr/bin/env bash
# One command that runs every CUDA path of mmdata and prints a summary (<= 5 minutes on one GPU):
#   1. every registered batched augmentation op on a CUDA batch under torch.cuda.set_sync_debug_mode("error")
#      (no hidden host-device synchronisation), compared with the same op on CPU (same params);
#   2. benchmarks/augment.py (its CUDA rows: batched CUDA vs per-sample CPU, sync-free check);
#   3. `mmdata train --device cuda` on avdigits (2 epochs); load_model(device="cuda").predict; the loader with DataLoader workers drawing the
#      params (plan_in_workers): batches equal to drawing in the main process, samples/s both ways;
#      DataLoader(pin_memory=True) pins uncollated samples (batch_size=None) and batches;
#   4. a small `mmdata ablate --device cuda` (explicit arm + label-noise control, 8 seeds, 2 epochs), whose
#      planted label-noise control must come out `hurts` (the GPU runs must still measure something).
# Without a CUDA device (or without an environment that imports torch and mmdata) it says so and exits 2;
# a failed step makes it exit 1.
#   bash scripts/gpu_check.sh [OUT]        (default OUT: runs/gpu_check)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
MMDATA=("$PY" -c "from mmdata.cli.main import app; app()")
OUT=${1:-runs/gpu_check}
mkdir -p "$OUT"
export NO_ALBUMENTATIONS_UPDATE=1

if ! "$PY" -c "import torch, mmdata" 2>/dev/null; then
  echo "gpu_check: $PY cannot import torch and mmdata: run 'bash scripts/setup_env.sh' first (with a CUDA build" \
       "of torch on a GPU machine), or set PYTHON to an environment that has them; nothing was run." >&2
  exit 2
fi

if ! "$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    built = torch.version.cuda or "none (a CPU-only build)"
    print(f"gpu_check: no CUDA device is visible to torch {torch.__version__} (CUDA runtime: {built}); "
          "nothing was run. Install a CUDA build of torch on a machine with an NVIDIA GPU "
          "(nvidia-smi must list it, CUDA_VISIBLE_DEVICES must not hide it).", file=sys.stderr)
    sys.exit(2)
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} device(s) visible")
EOF
then
  exit 2
fi

declare -a NAMES STATUS SECS DETAIL
step() {  # step NAME TIMEOUT_S CMD...: run, time, record
  local name=$1 limit=$2
  shift 2
  echo "== $name"
  local t0=$SECONDS log="$OUT/$(echo "$name" | tr ' /' '__').log"
  if timeout "$limit" "$@" >"$log" 2>&1; then st=ok; else st="FAILED (exit $?)"; fi
  tail -n 25 "$log"
  NAMES+=("$name"); STATUS+=("$st"); SECS+=($((SECONDS - t0))); DETAIL+=("$log")
}

# 1. every batched op, sync-free and equal to its CPU result
step "batched ops under sync debug mode" 120 "$PY" - <<'EOF'
import sys
import torch
from mmdata import Sample, collate
from mmdata.augment.base import registry
from mmdata.augment.recipe import load_recipe

g = torch.Generator().manual_seed(0)
samples = [Sample(f"s{i:03d}", {"image": torch.randint(0, 256, (3, 32, 40), dtype=torch.uint8, generator=g),
                                "audio": torch.randn(1, 8000 + 400 * i, generator=g) * 0.1,
                                "text": "the quick brown fox jumps over the lazy dog number %d" % i, "label": i % 10},
                  sample_rate=16000) for i in range(16)]
cpu = collate(samples)
gpu = cpu.to("cuda")
leaf = {}
for (sec, name), cls in sorted(registry().items()):
    if name not in ("one_of", "some_of"):
        leaf.setdefault(sec, []).append(name)
bad = 0
for (sec, name), cls in sorted(registry().items()):
    step = {"op": name, "p": 1.0}
    steps = [step]
    if name in ("one_of", "some_of"):  # composites: two of the section's leaf ops as children
        step["ops"] = [{"op": n, "p": 1.0} for n in leaf[sec] if n != "freq_mask"][:2]
    if sec == "audio" and name == "freq_mask":  # reads the log-mel features: a logmel op first
        steps = [{"op": "logmel"}, step]
    try:
        rec = load_recipe({"seed": 0, sec: steps})
    except Exception as exc:  # an op that needs arguments: say so, it is not a CUDA failure
        print(f"{sec + '.' + name:30s} skipped: needs arguments ({str(exc)[:80]})")
        continue
    apply = (lambda r, b: r.apply_batch_section(b, 1)) if sec == "batch" else (lambda r, b: r.apply_batched(b, 1))
    try:
        ref = apply(rec, cpu)
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = apply(rec, gpu)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.cuda.synchronize()
        diff = 0.0
        for k, v in ref.data.items():
            if isinstance(v, torch.Tensor) and k in out.data:
                o = out.data[k].cpu()
                if o.shape != v.shape:
                    raise AssertionError(f"{k}: shape {tuple(o.shape)} on CUDA vs {tuple(v.shape)} on CPU")
                if v.is_floating_point() or o.is_floating_point():
                    diff = max(diff, float((o.float() - v.float()).abs().max()) if v.numel() else 0.0)
                elif not torch.equal(o, v):
                    diff = max(diff, float((o.long() - v.long()).abs().max()))
        # noise ops draw on the device: CPU and CUDA agree in distribution, not bytes
        tol = float("inf") if "noise" in name else 2.0  # uint8 rounding of interpolating kernels
        status = "ok" if diff <= tol else f"MISMATCH max |cuda - cpu| = {diff:.3g}"
        bad += status != "ok"
        print(f"{sec + '.' + name:30s} {status} (sync-free; max |cuda - cpu| {diff:.3g})")
    except RuntimeError as exc:
        bad += 1
        kind = "SYNC" if "synchroniz" in str(exc) else "ERROR"
        print(f"{sec + '.' + name:30s} {kind}: {str(exc).splitlines()[0][:160]}")
    except Exception as exc:  # noqa: BLE001
        bad += 1
        print(f"{sec + '.' + name:30s} ERROR: {type(exc).__name__}: {str(exc)[:160]}")
# time_mask on the log-mel features (target: spec) is a path of its own
try:
    rec = load_recipe({"seed": 0, "audio": [{"op": "logmel"}, {"op": "time_mask", "p": 1.0, "target": "spec"}]})
    ref = rec.apply_batched(cpu, 1)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = rec.apply_batched(gpu, 1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    d = float((out.data["spec"].cpu() - ref.data["spec"]).abs().max())
    ok = d <= 1e-3
    bad += not ok
    print(f"{'audio.time_mask (spec)':30s} {'ok' if ok else 'MISMATCH'} (sync-free; max |cuda - cpu| {d:.3g})")
except Exception as exc:  # noqa: BLE001
    bad += 1
    print(f"{'audio.time_mask (spec)':30s} ERROR: {type(exc).__name__}: {str(exc)[:160]}")
print(f"{bad} op(s) failed")
sys.exit(1 if bad else 0)
EOF

# 2. the augmentation benchmark's CUDA figures
step "benchmarks/augment.py (CUDA rows)" 150 "$PY" benchmarks/augment.py --n 2048

# 3. the trainer on the GPU
DATA="$OUT/avdigits"
[ -f "$DATA/dataset.json" ] || "${MMDATA[@]}" datasets build avdigits "$DATA" >/dev/null 2>&1
step "mmdata train --device cuda" 120 "${MMDATA[@]}" train "$DATA" --device cuda --epochs 2 --recipe recipes/avdigits.yaml \
  --out "$OUT/train" --json

# 3a. a trained model served on the GPU: load_model(DIR, device="cuda").predict equals the CPU's
step "load_model(device=cuda).predict" 60 "$PY" -m pytest -q -p no:cacheprovider tests/train/test_predict_qa29.py \
  -k cuda_predicts

# 3b. the loader feeding the GPU: DataLoader workers draw each batch's params (plan_in_workers), the main
#     process only launches kernels; the batches must equal drawing in the main process; samples/s both ways
step "loader: params drawn by workers (CUDA)" 120 "$PY" - "$DATA" <<'EOF'
import sys
import time
import torch
import mmdata
from mmdata.augment.recipe import Recipe

data, bad = sys.argv[1], 0
apply = Recipe.apply_batched
for ahead in (True, False):
    ld = mmdata.loader(data, 256, recipe="recipes/avdigits.yaml", num_workers=4, device="cuda", augment_on="device",
                       seed=0, plan_in_workers=ahead)
    checked = []

    def spy(self, batch, epoch=0, plan=None):
        out = apply(self, batch, epoch, plan=plan)
        if plan is not None and len(checked) < 3:  # the workers' plan vs drawing here: the same batch
            ref = apply(self, batch, epoch)
            checked.append(all(torch.equal(v, ref.data[k]) for k, v in out.data.items() if isinstance(v, torch.Tensor))
                           and out.meta["aug"] == ref.meta["aug"])
        return out

    ld.recipe.apply_batched = spy.__get__(ld.recipe)
    for epoch in range(2):  # the first pass warms the workers' imports
        ld.set_epoch(epoch)
        t0, n = time.perf_counter(), 0
        for b in ld:
            n += len(b)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    print(f"plan_in_workers={ahead}: {n / dt:,.0f} samples/s (one epoch of avdigits train, batch 256, 4 workers, recipes/avdigits.yaml)")
    if ahead:
        print(f"  the workers' plans equal drawing in the main process: {checked}")
        bad += not checked or not all(checked)
sys.exit(1 if bad else 0)
EOF

# 3c. pin_memory=True pins uncollated samples (batch_size=None: Sample.pin_memory) and batches
step "DataLoader pin_memory: samples and batches pinned" 60 "$PY" - "$DATA" <<'EOF'
import sys
import torch
from torch.utils.data import DataLoader
import mmdata

ds = mmdata.open_dataset(sys.argv[1], split="train")
s = next(iter(DataLoader(ds, batch_size=None, num_workers=1, pin_memory=True)))
b = next(iter(DataLoader(ds, batch_size=8, num_workers=1, pin_memory=True, collate_fn=ds.collate_fn)))
got = {**{f"sample {k}": v.is_pinned() for k, v in s.items() if isinstance(v, torch.Tensor)},
       **{f"batch {k}": v.is_pinned() for k, v in b.data.items() if isinstance(v, torch.Tensor)}}
print("pinned:", got)
sys.exit(0 if all(got.values()) else 1)
EOF

# 4. a small ablation, one run per GPU at a time
cat >"$OUT/ablation.yaml" <<EOF
dataset: {path: $DATA}
trainer: {epochs: 2, eval_robustness: false}
seeds: 8
design: {mode: explicit, baseline: null, arms: {cutout: {image: [{op: cutout, p: 0.5}]}}}
controls: {identity: false, label_noise: 0.3}
EOF
rm -rf "$OUT/ablate"
step "mmdata ablate --device cuda" 150 "${MMDATA[@]}" ablate "$OUT/ablation.yaml" --out "$OUT/ablate" --device cuda --gpus 1 --json
step "ablate: label_noise control hurts" 30 "$PY" - "$OUT/ablate/summary.json" <<'EOF'
import json
import sys
s = json.load(open(sys.argv[1]))
for a in s["arms"]:
    print(f"{a['name']:12s} {a['kind']:8s} {a['decision']}")
print(s["controls"]["headline"])
sys.exit(0 if {a["name"]: a["decision"] for a in s["arms"]}.get("label_noise") == "hurts" else 1)
EOF

echo
echo "gpu_check summary ($("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))'))"
printf '%-40s %-18s %6s  %s\n' step status seconds log
fail=0
for i in "${!NAMES[@]}"; do
  printf '%-40s %-18s %6s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${SECS[$i]}" "${DETAIL[$i]}"
  [ "${STATUS[$i]}" = ok ] || fail=1
done
grep -h "CUDA\|cuda" "$OUT"/benchmarks_augment.py_*.log 2>/dev/null | sed 's/^/  /'
exit $fail
