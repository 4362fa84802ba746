#!/bin/bash
# Device call (2026-11-28; the wheels in .whl/, the data in .devdata/): Fashion-MNIST self-attention runs on the H200, 12 at once (16 CPU cores).
cd "$(dirname "$0")/../.."  # the repository root
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD GLIMPSE_DATA_DIR=$PWD/.devdata PYTHONUNBUFFERED=1
mkdir -p gpu/logs
{ nvidia-smi -L; lscpu | grep "Model name"; nproc; date; } > gpu/logs/machine.txt 2>&1
LIMIT=${LIMIT:-7.0}; DEVICE=${DEVICE:-cuda}
G="python3 -m baselines.train --device $DEVICE --no-progress --time-limit $LIMIT --image-every 0 --threads 1"
F=GlimpseMNIST-Fashion-v0
job() { name=$1; shift; ( "$@" --run-dir gpu/$name > gpu/logs/$name.log 2>&1; echo "exit $?" >> gpu/logs/$name.log ) & }
S="--model self_attention --env $F --block-size 2 --batch-size 64 --dropout 0.2 --feature-dropout 0.1"
P="--lr-patience 2 --patience 8 --epochs 100"
C="--lr-schedule cosine --epochs ${COS:-35} --patience 100"
for s in 1 2 3 4; do job sa-fashion-ph3-fd10-s$s $G $S --pool-heads 3 $P --seed $s; done
for s in 2 3 4 5; do job sa-fashion-fd10-s$s $G $S $P --seed $s; done
for s in 1 2; do job sa-fashion-ph3-fd10-cos${COS:-35}-s$s $G $S --pool-heads 3 $C --seed $s; done
for s in 1 2; do job sa-fashion-fd10-cos${COS:-35}-s$s $G $S $C --seed $s; done
for i in $(seq ${WATCH:-520}); do [ -z "$(jobs -r)" ] && break; sleep 1; done
echo "waited $i s; $(date)" >> gpu/logs/machine.txt
pkill -TERM -f "baselines.train"; sleep 3
python3 - <<'PY'
import json, pathlib, torch
for run in pathlib.Path("gpu").iterdir():
    last = run / "checkpoints" / "last.pt"
    if last.is_file():
        history = torch.load(last, map_location="cpu", weights_only=False)["history"]
        (run / "history.json").write_text(json.dumps(history, indent=1) + "\n")
PY
mkdir -p "$OUT"
tar czf "$OUT/results.tar.gz" $(find gpu -name "*.json" -o -name "*.log" -o -name "*.txt")
for f in gpu/logs/*.log; do echo "$f: $(grep -c '^epoch' $f) epochs; $(tail -n 2 $f | tr '\n' ' ' | cut -c1-200)"; done
