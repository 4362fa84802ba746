#!/bin/bash
# Third device call: feature dropout sweeps. Fashion-MNIST on the GPU, the 10k cluttered CNN on the CPU cores.
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/gymnasium*.whl .whl/farama*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD GLIMPSE_DATA_DIR=$PWD/.devdata PYTHONUNBUFFERED=1
mkdir -p gpu/logs
{ nvidia-smi -L; lscpu | grep "Model name"; nproc; date; } > gpu/logs/machine.txt 2>&1
LIMIT=${LIMIT:-6.0}
G="python3 -m baselines.train --device cuda --no-progress --time-limit $LIMIT --image-every 0 --threads 1"
P="python3 -m baselines.train --device cpu --no-progress --time-limit $LIMIT --image-every 0 --threads 1"
C=GlimpseMNIST-Cluttered-v0; F=GlimpseMNIST-Fashion-v0
job() { name=$1; shift; ( "$@" --run-dir gpu/$name > gpu/logs/$name.log 2>&1; echo "exit $?" >> gpu/logs/$name.log ) & }
FC="--model cnn --env $F --batch-size 64 --dropout 0.5 --lr-patience 2 --patience 8"
FS="--model self_attention --env $F --block-size 2 --batch-size 64 --dropout 0.2 --lr-patience 2 --patience 8"
job cnn-fashion-fd25 $G $FC --feature-dropout 0.25
job cnn-fashion-fd50 $G $FC --feature-dropout 0.5
job cnn-fashion-fd25-ema $G $FC --feature-dropout 0.25 --ema 0.999
job sa-fashion-fd10 $G $FS --feature-dropout 0.1
job sa-fashion-fd25 $G $FS --feature-dropout 0.25
job sa-fashion-fd25-ema $G $FS --feature-dropout 0.25 --ema 0.999
TC="--model cnn --env $C --train-size 10000 --dropout 0.5 --lr-patience 2 --patience 10"
job cnn-10k-b16-fd25 $P $TC --batch-size 16 --feature-dropout 0.25
job cnn-10k-b16-fd50 $P $TC --batch-size 16 --feature-dropout 0.5
job cnn-10k-b16-fd70 $P $TC --batch-size 16 --feature-dropout 0.7
job cnn-10k-b32-fd25 $P $TC --batch-size 32 --feature-dropout 0.25
job cnn-10k-b32-fd50 $P $TC --batch-size 32 --feature-dropout 0.5
job cnn-10k-b16-fd50-ema $P $TC --batch-size 16 --feature-dropout 0.5 --ema 0.999
job cnn-10k-b16-fd25-s2 $P $TC --batch-size 16 --feature-dropout 0.25 --seed 2
job cnn-10k-b16-fd50-s2 $P $TC --batch-size 16 --feature-dropout 0.5 --seed 2
for i in $(seq ${WATCH:-420}); do [ -z "$(jobs -r)" ] && break; sleep 1; done
echo "waited $i s" >> gpu/logs/machine.txt
pkill -TERM -f "baselines.train"; sleep 3
python3 .devjobs/pack.py gpu "$OUT"
for f in gpu/logs/*.log; do echo "$f: $(grep -c '^epoch' $f) epochs; $(tail -n 2 $f | tr '\n' ' ')"; done
