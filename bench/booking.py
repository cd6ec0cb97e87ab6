"""Benchmark: booking admission under load.

32 concurrent clients post jobs booking 2 licenses each to 2 gunicorn API processes on one
PostgreSQL; the pools are shared by two clusters, so requests of both processes compete for
the same feature rows. Targets on the 2-core machine: >= 300 job posts/s (granted or refused),
p99 <= 150 ms, and no pool booked beyond what the rule allows (checked in SQL afterwards).

The load generator is wrk (C, epoll; one process per API process, LuaJIT builds each request),
so the client costs little of the CPU that the API and the database share. pgbench runs the
admission's own SQL (lock the pool rows, sum the pool's bookings, insert) as the ceiling that
PostgreSQL alone reaches on this machine.

PostgreSQL is a throw-away cluster (fsync off) unless LM_BENCH_DATABASE_URL names a database.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import TextClause

from backend.booking import BOOK_AND_STATE_SQL, LOCK_POOLS_SQL, REPLACE_JOB_SQL, RESOLVE_SQL
from devstack.api import ApiServer
from devstack.catalog import add_configuration
from devstack.postgres import PostgresCluster, postgres_bin
from devstack.processes import free_port
from devstack.stack import ApiSession
from lm_common.facts import ADMIN_PERMISSION, permission_name

CLUSTERS = ("bench-cluster-a", "bench-cluster-b")
PRODUCT = "solver"
FEATURES = tuple(f"f{n}" for n in range(8))
# Per feature and cluster configuration (the two share the pool): sized so that the pools fill
# up during the run and the later posts are refused, as at a busy site.
TOTAL, USED, RESERVED = 1200, 100, 100
CONNECTIONS = 32
DURATION_S = 15
WARMUP_S = 3
API_PROCESSES = 2
# One sync worker per core in each process. Measured on this 2-core machine: 3 workers per
# process gave 296 posts/s, p99 174 ms and 6.4 ms of CPU per post; 2 gave 345-376 posts/s,
# p99 132-143 ms and 5.1-5.5 ms: extra workers only queue on the same pool row locks and
# compete for the cores PostgreSQL needs.
GUNICORN_WORKERS = 2
TARGETS = {"posts_per_s": 300, "p99_ms": 150}


@dataclass(frozen=True)
class Deployment:
    database_url: str
    api_urls: list[str]
    api_pids: list[int]  # gunicorn masters
    cluster_ids: list[str]
    tokens: list[str]


def cpu_seconds_by_pid() -> dict[int, float]:
    """User + system CPU time of every process now (parent pid and time from /proc/PID/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    snapshot = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            snapshot[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return snapshot


def descendants(root_pids: list[int]) -> set[int]:
    """The processes below `root_pids` (gunicorn workers) and the roots themselves."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except OSError:
                continue
    found = set(root_pids)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def _database(root: Path, cleanup: ExitStack) -> str:
    configured = os.environ.get("LM_BENCH_DATABASE_URL")
    if configured:
        return configured
    postgres = PostgresCluster(datadir=root / "pgdata", port=free_port(), fast=True)
    postgres.ensure_running()
    cleanup.callback(postgres.stop)
    return postgres.ensure_database("bench_booking")


def _seed(admin: ApiSession, cluster_client_ids: list[str]) -> None:
    """Each cluster gets a configuration on the same license server with every feature."""
    features = {f"{PRODUCT}.{name}": RESERVED for name in FEATURES}
    for cluster in cluster_client_ids:
        add_configuration(admin, cluster, features, ("licserv1:27000",), name="bench")


def _report_usage(cluster: ApiSession) -> None:
    """The cluster's agent reports total and used: the features become bookable."""
    usage = [
        {"product_name": PRODUCT, "feature_name": name, "total": TOTAL, "used": USED}
        for name in FEATURES
    ]
    cluster.call("PUT", "/lm/features/by_client_id", json=usage)


@contextmanager
def deployment(root: Path) -> Iterator[Deployment]:
    """PostgreSQL, two API processes behind one public URL, two clusters sharing the pools."""
    with ExitStack() as cleanup:
        database_url = _database(root, cleanup)
        ports = [free_port() for _ in range(API_PROCESSES)]
        public_url = f"http://127.0.0.1:{ports[0]}"
        servers = [
            ApiServer(
                state_dir=root / f"api{index}",
                database_url=database_url,
                port=port,
                workers=GUNICORN_WORKERS,
                extra_env={"LM_PUBLIC_URL": public_url, "LM_LOG_LEVEL": "WARNING"},
            )
            for index, port in enumerate(ports)
        ]
        servers[0].migrate()
        admin = servers[0].create_client("bench-admin", [ADMIN_PERMISSION])
        clusters = [
            servers[0].create_client(
                name, [permission_name("job", "create"), permission_name("feature", "update")]
            )
            for name in CLUSTERS
        ]
        for server in servers:
            server.start()
            cleanup.callback(server.stop)
        _seed(ApiSession(servers[0].url, admin), [c["client_id"] for c in clusters])
        sessions = [ApiSession(servers[0].url, client) for client in clusters]
        for session in sessions:
            _report_usage(session)
        yield Deployment(
            database_url,
            [server.url for server in servers],
            [server.running_pid() for server in servers],
            [client["client_id"] for client in clusters],
            [session.token for session in sessions],
        )


def _wrk(deployment: Deployment, duration_s: int, prefix: str) -> list[dict[str, Any]]:
    """One wrk per API process, each posting as one of the clusters; their JSON summaries."""
    script = Path(__file__).with_suffix(".lua")
    names = [f"{PRODUCT}.{name}" for name in FEATURES]
    processes = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS // API_PROCESSES}",
                f"-d{duration_s}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
                "--",
                token,
                f"{prefix}{index}",
                *names,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for index, (url, token) in enumerate(
            zip(deployment.api_urls, deployment.tokens, strict=True)
        )
    ]
    summaries = []
    for process in processes:
        output, _ = process.communicate()
        found = re.search(r"^WRK_RESULT (.*)$", output, re.MULTILINE)
        if process.returncode != 0 or found is None:
            raise RuntimeError(f"wrk failed ({process.returncode}): {output}")
        summaries.append(json.loads(found.group(1)))
    return summaries


def _overbooked_pools(database_url: str) -> dict[str, dict[str, int]]:
    """Pools whose bookings exceed total - used - reserved, computed independently of the API."""
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT products.name || '.' || features.name, SUM(bookings.quantity),
                MIN(features.total - features.used - features.reserved)
            FROM bookings
            JOIN features ON features.id = bookings.feature_id
            JOIN products ON products.id = features.product_id
            GROUP BY products.name, features.name
            """
        )
        return {
            name: {"booked": int(booked), "allowed": int(allowed)}
            for name, booked, allowed in cursor.fetchall()
            if booked > allowed
        }


def _database_backends(database_url: str) -> set[int]:
    """Server processes of the benchmark's database (the API's pooled connections)."""
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def _count(database_url: str, sql: str) -> int:
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


def _inline(statement: TextClause, values: dict[str, str]) -> str:
    """The API's SQL with its bind parameters replaced by pgbench expressions, on one line."""
    sql = str(statement)
    for name, value in values.items():
        sql = re.sub(rf":{name}\b", value, sql)
    return " ".join(sql.split()) + ";"


def _pgbench_script(cluster_client_id: str) -> str:
    """The API's transaction for a job booking two random features, as one pgbench transaction:
    resolve the names, record the job, lock the pools, insert the bookings and sum the pools.

    Features 1-8 are the first cluster's, 9-16 the second's (the seeding order).
    """
    first, second = ":first", ":second"
    both = f"CAST(ARRAY[{first}, {second}] AS integer[])"
    pool_features = f"CAST(ARRAY[{first}, {first}, {second}, {second}] AS integer[])"
    return "\n".join(
        [
            f"\\set first random(1, {len(FEATURES)})",
            f"\\set second 1 + (:first + random(0, {len(FEATURES) - 2})) % {len(FEATURES)}",
            "BEGIN;",
            _inline(
                RESOLVE_SQL,
                {
                    "products": f"ARRAY['{PRODUCT}', '{PRODUCT}']",
                    "features": f"ARRAY['f' || ({first} - 1), 'f' || ({second} - 1)]",
                    "cluster_client_id": f"'{cluster_client_id}'",
                },
            ),
            _inline(
                REPLACE_JOB_SQL,
                {
                    "slurm_job_id": "'pgbench-' || txid_current()",
                    "cluster_client_id": f"'{cluster_client_id}'",
                    "username": "'bench'",
                    "lead_host": "'node001'",
                },
            ),
            _inline(LOCK_POOLS_SQL, {"feature_ids": both}),
            _inline(
                BOOK_AND_STATE_SQL,
                {
                    "job_id": "currval('jobs_id_seq')",
                    "feature_ids": both,
                    "quantities": "ARRAY[1, 2]",
                    "pool_feature_ids": pool_features,
                    "pool_member_ids": f"ARRAY[{first}, {first} + {len(FEATURES)}, "
                    f"{second}, {second} + {len(FEATURES)}]",
                    "staleness": "600",
                },
            ),
            "COMMIT;",
        ]
    )


def _pgbench_tps(database_url: str, cluster_client_id: str, root: Path) -> float:
    script = root / "admission.sql"
    script.write_text(_pgbench_script(cluster_client_id) + "\n")
    result = subprocess.run(
        [
            str(postgres_bin() / "pgbench"), "-n", "-M", "prepared",
            "-c", str(CONNECTIONS), "-j", "2", "-T", "10", "-f", str(script), database_url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    found = re.search(r"tps = ([\d.]+)", result.stdout)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed ({result.returncode}): {result.stderr}")
    return float(found.group(1))


def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lm-bench-booking-"))
    os.chmod(root, 0o755)  # the postgres user must reach its data folder
    try:
        with deployment(root) as deployed:
            _wrk(deployed, WARMUP_S, "warmup")
            with psycopg.connect(deployed.database_url) as connection:
                connection.cursor().execute("DELETE FROM jobs")
            before = cpu_seconds_by_pid()
            wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            summaries = _wrk(deployed, DURATION_S, "job")
            wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            after = cpu_seconds_by_pid()
            database_pids = _database_backends(deployed.database_url)
            api_pids = descendants(deployed.api_pids)
            overbooked = _overbooked_pools(deployed.database_url)
            jobs_recorded = _count(deployed.database_url, "SELECT count(*) FROM jobs")
            pgbench_tps = _pgbench_tps(deployed.database_url, deployed.cluster_ids[0], root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    statuses: dict[str, int] = {}
    for summary in summaries:
        for status, count in summary["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    posts = sum(summary["requests"] for summary in summaries)
    seconds = max(summary["duration_us"] for summary in summaries) / 1e6
    p99_ms = max(summary["p99_us"] for summary in summaries) / 1000
    posts_per_s = posts / seconds

    def cpu_ms_per_post(pids: set[int]) -> float:
        used = sum(after[pid] - before.get(pid, 0.0) for pid in pids if pid in after)
        return round(used * 1000 / posts, 2)

    cpu_ms = {
        "api": cpu_ms_per_post(api_pids),
        "postgres": cpu_ms_per_post(database_pids),
        "wrk": round(
            (wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime)
            * 1000
            / posts,
            2,
        ),
    }
    return {
        "load_generator": f"wrk, {API_PROCESSES} processes x {CONNECTIONS // API_PROCESSES} "
        "connections, one per API process",
        "api": f"{API_PROCESSES} gunicorn processes x {GUNICORN_WORKERS} sync workers",
        "duration_s": round(seconds, 1),
        "job_posts": posts,
        "posts_per_s": round(posts_per_s, 1),
        "statuses": statuses,
        "granted_jobs_recorded": jobs_recorded,
        "latency_ms": {
            "p50_max_of_processes": max(s["p50_us"] for s in summaries) / 1000,
            "p90_max_of_processes": max(s["p90_us"] for s in summaries) / 1000,
            "p99_max_of_processes": p99_ms,
            "max": max(s["max_us"] for s in summaries) / 1000,
        },
        "socket_errors": sum(summary["socket_errors"] for summary in summaries),
        # The machine is shared: CPU per post says what 2 dedicated cores would sustain.
        "cpu_ms_per_post": cpu_ms,
        "posts_per_s_on_2_dedicated_cores": round(2000 / sum(cpu_ms.values()), 1),
        "machine_load_average_1min": round(os.getloadavg()[0], 2),
        "overbooked_pools": overbooked,
        "pgbench_ceiling_tps": round(pgbench_tps, 1),
        "targets_met": {
            "posts_per_s": posts_per_s >= TARGETS["posts_per_s"],
            "p99_ms": p99_ms <= TARGETS["p99_ms"],
            "no_overbooking": not overbooked,
        },
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
