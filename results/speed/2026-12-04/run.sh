#!/usr/bin/env bash
# The speed measurements of docs/speed.md, 2026-12-04: one window on the 2-core development
# VM with every other process paused (SIGSTOP), torch's default threads unless a row says
# otherwise. Run from the repository root; OLD is a worktree of commit 10316b1 (the
# environments before they kept their CPU work on the calling thread).
set -euo pipefail
OUT=results/speed/2026-12-04
OLD=${OLD:-/tmp/old}
b=benchmarks
# 1. every id, both APIs, N=256 and 1024, with 0/1/2 busy competitors
python $b/env_throughput.py --native-only --sizes 256 1024 --busy 0 --busy 1 --busy 2 \
  --api numpy --api tensor --repeats 3 \
  --env-id GlimpseMNIST-v0 --env-id GlimpseMNIST-Translated-v0 --env-id GlimpseMNIST-Cluttered-v0 \
  --env-id GlimpseMNIST-Cluttered60-v0 --env-id GlimpseMNIST-Cluttered100-v0 --env-id GlimpseMNIST-Fashion-v0 \
  --json $OUT/env_load.json > $OUT/env_load.txt
# 2. the second core on a quiet machine: default threads against torch.set_num_threads(1)
python $b/env_throughput.py --native-only --sizes 1024 --compare-one-thread --api numpy --api tensor --repeats 3 \
  --env-id GlimpseMNIST-Cluttered-v0 --env-id GlimpseMNIST-Cluttered100-v0 \
  --json $OUT/env_one_thread.json > $OUT/env_one_thread.txt
#    the same with torch splitting the box sums (the package at 10316b1), quiet and loaded
#    (today's script, importing the old glimpse_env first)
PYTHONPATH="$OLD" python $b/env_throughput.py --native-only --sizes 1024 --busy 0 --busy 1 --busy 2 \
  --compare-one-thread --repeats 3 --env-id GlimpseMNIST-Cluttered-v0 --env-id GlimpseMNIST-Cluttered100-v0 \
  --json $OUT/env_split_10316b1.json > $OUT/env_split_10316b1.txt
# 3. the trainers under load: RAM update (GlimpseMNIST-v0) and the baselines (Cluttered-v0)
for threads in 2 1; do
  for k in 0 1 2; do
    python $b/ram_epoch.py --updates 100 --repeats 3 --threads $threads --busy $k \
      --json $OUT/ram_epoch-t$threads-busy$k.json > $OUT/ram_epoch-t$threads-busy$k.txt
    python $b/baseline_throughput.py --updates 40 --threads $threads --busy $k \
      --json $OUT/baseline-t$threads-busy$k.json > $OUT/baseline-t$threads-busy$k.txt
  done
done
# 4. the other tables of the page
python $b/env_throughput.py --repeats 3 --json $OUT/env_throughput.json > $OUT/env_throughput.txt
python $b/step_breakdown.py --repeats 3 --json $OUT/step_breakdown.json > $OUT/step_breakdown.txt
python $b/retina_throughput.py --json $OUT/retina_throughput.json > $OUT/retina_throughput.txt
python $b/env_step_time.py --json $OUT/env_step_time.json > $OUT/env_step_time.txt
