"""The table of every RecurrentPPO run kept under ``results/rppo/`` (the sweep and the full runs).

    python benchmarks/rppo_results.py [--root results/rppo] [--commands]

Each run folder holds the ``test.json`` that ``examples/recurrent_ppo.py`` wrote at its
end: the deterministic policy scored on ``val`` and ``test`` by the evaluation protocol,
with the steps, the training time and every hyperparameter. The table shows the settings
that differ from SB3's and the example's shared ones, sorted by environment, action form
and val accuracy (compare settings on val; test is for the leaderboard).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_results import print_table

#: the hyperparameters the table shows, with their short names
SHOWN = {
    "learning_rate": "lr",
    "ent_coef": "ent",
    "gae_lambda": "lambda",
    "n_epochs": "epochs",
    "net_arch": "head",
    "num_envs": "envs",
    "batch_size": "batch",
    "target_kl": "target_kl",
}
COLUMNS = ["env", "action", "run", "steps", "train min", "steps/s", "settings", "val", "test"]


def load_runs(root: Path) -> list[dict[str, Any]]:
    """One row per ``test.json`` under ``root`` (at any depth)."""
    rows = []
    for path in sorted(root.rglob("test.json")):
        result = json.loads(path.read_text())
        settings = result["hyperparameters"]
        shown = ", ".join(
            f"{short} {settings[key]}" for key, short in SHOWN.items() if settings.get(key) is not None
        )
        rows.append(
            {
                "env": result["env_id"],
                "action": settings["action"],
                "run": str(path.parent.relative_to(root)),
                "steps": f"{result['steps']:,}",
                "train min": f"{result['train_seconds'] / 60:.1f}",
                "steps/s": f"{result['steps'] / result['train_seconds']:,.0f}",
                "settings": shown,
                "val": result["val_accuracy"],
                "test": result["accuracy"],
                "command": result["command"],
            }
        )
    rows.sort(key=lambda row: (row["env"], row["action"], -row["val"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "results" / "rppo"))
    parser.add_argument("--commands", action="store_true", help="print each row's command under the table")
    args = parser.parse_args()
    rows = load_runs(Path(args.root))
    print_table(rows, COLUMNS, commands=args.commands)


if __name__ == "__main__":
    main()
