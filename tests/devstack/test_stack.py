"""The whole-stack bring-up the e2e tests and the demo use: a second start reuses what runs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.processes import is_alive, read_pid
from devstack.stack import Stack

pytestmark = pytest.mark.slurm


@pytest.fixture
def stack_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="lm-test-stack-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_second_start_reuses_the_running_stack_and_stop_ends_it(stack_root: Path) -> None:
    first = Stack(stack_root)
    first.start()
    try:
        pool = first.add_pool("ansys", "cfd", 5, server_type="rlm")
        daemons = {
            "api": read_pid(first.api.pid_file),
            "slurmctld": read_pid(first.slurm.root / "run" / "slurmctld.pid"),
            "reconcile": read_pid(first.reconcile_pid_file),
        }

        again = Stack(stack_root)
        again.start()

        assert again.api.url == first.api.url
        assert again.cluster_client_id == first.cluster_client_id
        assert read_pid(again.api.pid_file) == daemons["api"]
        assert read_pid(again.slurm.root / "run" / "slurmctld.pid") == daemons["slurmctld"]
        assert read_pid(again.reconcile_pid_file) == daemons["reconcile"]
        assert again.slurm.license_usage()[pool.slurm_license]["Total"] == 5
        assert again.feature(pool)["report_status"] == "ok"
    finally:
        first.stop()
    assert not any(is_alive(pid) for pid in daemons.values() if pid is not None)
    assert not first.postgres.is_running()
