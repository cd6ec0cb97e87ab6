"""The whole stack (PostgreSQL, API, simulated license servers, Slurm + agent) for the scenarios.

One stack serves the session; every scenario gets its own license pools (features named after
the test), so scenarios never share tokens, and leaves the stack as it found it.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Pool, Stack
from tests.e2e.licensed import Ledger

PoolFactory = Callable[..., Pool]
_pool_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def whole_stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="lm-test-e2e-"))
    stack = Stack(root)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def stack(whole_stack: Stack) -> Iterator[Stack]:
    """The session's stack; afterwards: jobs cancelled, API, agent config and loop as at start."""
    yield whole_stack
    # pytest shows this only when the test failed: what the agent decided, and where things are.
    print(whole_stack.describe())
    print("\n".join(whole_stack.agent_log.read_text().splitlines()[-60:]))
    if not whole_stack.api.healthy():
        whole_stack.api.start()
    whole_stack.write_agent_config()
    if not whole_stack.reconcile_loop_running():
        whole_stack.start_reconcile_loop()
    whole_stack.slurm.cancel_all_jobs()


@pytest.fixture
def ledger(stack: Stack) -> Iterator[Ledger]:
    """Licensed jobs (`ledger.submit`, `ledger.submit_held`) and, for every pool of the test,
    the rule it must keep throughout: outside use + Slurm's running jobs <= the server's total,
    and no job's checkout denied."""
    watch = Ledger(stack)
    watch.start()
    yield watch
    watch.stop()
    assert watch.samples > 0 or not watch.pools, "the ledger could not check anything"
    assert watch.violations == [], "more tokens in use than the server has"
    assert watch.denied() == [], "jobs whose checkout the license server denied"


@pytest.fixture
def new_pool(stack: Stack, ledger: Ledger, request: pytest.FixtureRequest) -> PoolFactory:
    """Make a license pool only this test uses: `new_pool(total, reserved=..., mirrors=...)`;
    the ledger watches it."""

    def make(total: int, product: str = "abaqus", **settings: Any) -> Pool:
        feature = f"{request.node.name.removeprefix('test_')[:40]}_{next(_pool_numbers)}"
        pool = stack.add_pool(product, feature, total, **settings)
        ledger.pools.append(pool)
        return pool

    return make
