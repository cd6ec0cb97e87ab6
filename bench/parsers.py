"""Benchmark: parsing an lmstat output with 10,000 checkouts must take <= 100 ms.

The outputs come from the simulator's renderers (the real formats); the other five formats are
measured with the same load for comparison.
"""

from __future__ import annotations

import json
import statistics
import time

from agent.parsers import parse
from agent.simulator.formats import RENDERERS
from lm_common.facts import SERVER_TYPES

CHECKOUTS = 10_000
FEATURES = 100
REPEATS = 15
TARGET_MS = 100.0


def busy_server(server_type: str) -> dict:
    """A server with FEATURES features sharing CHECKOUTS single-license checkouts."""
    per_feature = CHECKOUTS // FEATURES
    return {
        "type": server_type,
        "host": "lic1",
        "port": 27000,
        "features": [{"name": f"feature_{n:03d}", "total": per_feature} for n in range(FEATURES)],
        "checkouts": [
            {
                "feature": f"feature_{n // per_feature:03d}",
                "user": f"user{n}",
                "host": f"node{n % 512:04d}",
                "count": 1,
            }
            for n in range(CHECKOUTS)
        ],
    }


def time_parse(server_type: str) -> dict:
    """Wall and CPU time of parsing one busy output (CPU time shows the cost on a shared host)."""
    text = RENDERERS[server_type](busy_server(server_type))
    wall, cpu = [], []
    for _ in range(REPEATS):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        result = parse(server_type, text)
        wall.append((time.perf_counter() - wall_start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    assert sum(len(feature.uses) for feature in result.features.values()) == CHECKOUTS
    return {
        "output_bytes": len(text),
        "median_ms": round(statistics.median(wall), 2),
        "max_ms": round(max(wall), 2),
        "median_cpu_ms": round(statistics.median(cpu), 2),
    }


def run() -> dict:
    per_type = {server_type: time_parse(server_type) for server_type in SERVER_TYPES}
    flexlm = per_type["flexlm"]
    return {
        "checkouts": CHECKOUTS,
        "features": FEATURES,
        "repeats": REPEATS,
        "target_ms": TARGET_MS,
        "lmstat_median_ms": flexlm["median_ms"],
        "lmstat_median_cpu_ms": flexlm["median_cpu_ms"],
        "lmstat_within_target": flexlm["median_ms"] <= TARGET_MS,
        "per_type": per_type,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
