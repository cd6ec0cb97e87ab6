"""Benchmark: EpilogSlurmctld wall time, process start to exit, as slurmctld runs it (a fresh
`lm-agent epilog` with only the job's SLURM_* variables) against the real API on localhost,
the agent installed as on a controller (see bench.prolog).

Cases, interleaved so that load on the machine hits them alike:
- `released`: a job that succeeded; the epilog deletes its record and bookings (one request).
- `failed_no_license_text`: a job that exited 1; the epilog also searches the whole default
  tail (64 KiB of solver output, ~1000 lines) and finds no license error.
- `license_failure`: the same with a FlexNet -4 error at the end: recognised, earlier requeues
  counted (one GET), requeued, event recorded (one POST). There is no slurmctld here, so
  `tools.scontrol` is /bin/true: the number holds the spawn of scontrol, not its RPC to
  slurmctld (a few ms more on a live controller).
- `python_startup`: the bare interpreter of the same virtualenv, for scale on a loaded machine.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.prolog import (
    WARM_UP_RUNS,
    api_with_pool,
    deployed_agent,
    job_env,
    percentile,
    wall_and_cpu_ms,
)
from lm_common.facts import permission_name

RUNS = 60
TAIL_BYTES = 64 * 1024
FLEXNET = "FlexNet Licensing error:-4,132. Licensed number of users already reached.\n"
PERMISSIONS = [
    permission_name("job", "delete"),
    permission_name("license-failure", "read"),
    permission_name("license-failure", "create"),
]


def solver_output(path: Path, last_line: str = "") -> None:
    """64 KiB of plausible solver progress lines, optionally ending with `last_line`."""
    line = "Step 12345  time 1.234e-03  residual 4.56e-07  dt 1.0e-05  elapsed 00:01:02\n"
    path.write_text(line * (TAIL_BYTES // len(line)) + last_line)


def epilog_env(config: Path, job_id: int, exit_code: int, output: Path) -> dict[str, str]:
    return {
        **job_env(config, job_id, "abaqus.abaqus@flexlm:2,ansys.cfd@flexlm:1"),
        "SLURM_SCRIPT_CONTEXT": "epilog_slurmctld",
        "SLURM_JOB_UID": str(output.stat().st_uid),
        "SLURM_JOB_EXIT_CODE": str(exit_code << 8),
        "SLURM_JOB_EXIT_CODE2": f"{exit_code}:0",
        "SLURM_JOB_STDOUT": str(output),
        "SLURM_JOB_WORK_DIR": str(output.parent),
        "SLURM_JOB_RESTART_COUNT": "0",
    }


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lm-bench-epilog-"))
    root.chmod(0o755)  # the postgres user must reach its data folder
    plain, starved = root / "plain.out", root / "starved.out"
    solver_output(plain)
    solver_output(starved, FLEXNET)
    samples: dict[str, list[float]] = {}
    try:
        epilog = [str(deployed_agent(root) / "lm-agent"), "epilog"]
        with api_with_pool(root, PERMISSIONS) as config:
            settings = yaml.safe_load(config.read_text())
            config.write_text(yaml.safe_dump({**settings, "tools": {"scontrol": "/bin/true"}}))
            cases = (
                ("released", 0, plain),
                ("failed_no_license_text", 1, plain),
                ("license_failure", 1, starved),
            )
            python = [str(Path(epilog[0]).parent / "python"), "-c", "pass"]
            for n in range(-WARM_UP_RUNS, RUNS):
                for number, (case, code, output) in enumerate(cases):
                    env = epilog_env(config, 10_000 * (number + 1) + n, code, output)
                    wall, _ = wall_and_cpu_ms(epilog, env, root)
                    if n >= 0:
                        samples.setdefault(case, []).append(wall)
                if n >= 0:  # the bare interpreter: how much of each number the machine's load is
                    samples.setdefault("python_startup", []).append(
                        wall_and_cpu_ms(python, {}, root)[0]
                    )
            log = (root / "agent.log").read_text()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results: dict[str, Any] = {
        "runs_per_case": RUNS,
        "tail_bytes_searched": TAIL_BYTES,
        "jobs_requeued": log.count(" requeued (1 of 3): FlexNet -4 "),
        "failed_jobs_recognised_without_license_text": log.count("left failed"),
    }
    for case, walls in samples.items():
        results[f"{case}_p50_ms"] = round(statistics.median(walls), 1)
        results[f"{case}_p95_ms"] = round(percentile(walls, 0.95), 1)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
