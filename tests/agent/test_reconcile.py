"""`reconcile.run` and `reconcile.report` on the whole real stack: the API under gunicorn on
PostgreSQL, a single-node Slurm 22.05, and license servers simulated by lm-simulator."""

from __future__ import annotations

import logging
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from agent import reconcile
from agent.api import ApiClient
from agent.config import AgentConfig
from agent.kept_outputs import KEPT_OUTPUTS
from agent.lock import exclusive_lock
from agent.parsers import FeatureUsage
from agent.polling import PollResult
from agent.simulator.formats import GARBAGE
from agent.slurm import Slurm, SlurmJob, SlurmLicense
from devstack.catalog import add_configuration
from devstack.processes import free_port, wait_for
from devstack.simulator import Simulator
from devstack.slurm import SlurmCluster
from lm_common.facts import AGENT_PERMISSIONS, SERVER_TYPES
from tests.agent.conftest import LM_AGENT, write_agent_yaml
from tests.live_api import LiveApi, client_config

ABAQUS = "abaqus.abaqus@flexlm"  # 10 in the session's Slurm cluster
ANSYS = "ansys.cfd@rlm"  # 5


@dataclass
class Site:
    """One cluster's agent settings and the services it talks to."""

    api: LiveApi
    cluster: dict[str, str]
    slurm_cluster: SlurmCluster
    simulator: Simulator
    config: AgentConfig

    @property
    def agent_api(self) -> ApiClient:
        """The cluster's own client, as the prolog uses it."""
        return ApiClient(self.config)

    @property
    def slurm(self) -> Slurm:
        return reconcile.slurm_of(self.config)

    def add_configuration(
        self,
        server_type: str,
        addresses: list[str],
        product_features: list[str],
        grace_time: int = 300,
        cluster_client_id: str | None = None,
    ) -> dict[str, Any]:
        return add_configuration(
            self.api.admin,
            cluster_client_id or self.cluster["client_id"],
            product_features,
            addresses,
            name=f"{server_type}-{uuid.uuid4().hex[:6]}",
            grace_time=grace_time,
            server_type=server_type,
        )

    def reserved(self) -> dict[str, int]:
        """The reservation's licenses ({} when there is no reservation)."""
        reservation = self.slurm.reservation(self.config.reservation_name)
        return reservation.licenses if reservation else {}

    def slurm_license(self, name: str) -> SlurmLicense:
        return self.slurm.licenses()[name]

    def feature(self, product_feature: str) -> dict[str, Any]:
        product, name = product_feature.split(".", 1)
        for feature in self.api.admin.get_all("/lm/features"):
            if feature["product"]["name"] == product and feature["name"] == name:
                return feature
        raise AssertionError(f"no feature {product_feature}")

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {job["slurm_job_id"]: job for job in self.api.admin.get_all("/lm/jobs")}

    def book(self, slurm_job_id: int | str, bookings: Mapping[str, int], **job: str) -> int:
        """POST /lm/jobs as the prolog does; returns the HTTP status."""
        response = self.agent_api.request(
            "POST",
            "/lm/jobs",
            json={
                "slurm_job_id": str(slurm_job_id),
                "username": job.get("username", "root"),
                "lead_host": job.get("lead_host", self.slurm_cluster.node_name),
                "bookings": [
                    {"product_feature": name, "quantity": count} for name, count in bookings.items()
                ],
            },
        )
        return response.status

    def run_job(self, licenses: Mapping[str, int]) -> int:
        job_id = self.slurm_cluster.submit("sleep 120", licenses=licenses)
        self.slurm_cluster.wait_for_job(job_id, "RUNNING")
        return job_id

    def reconcile(self) -> None:
        assert reconcile.run(self.config) == 0


@pytest.fixture
def site(
    live_api: LiveApi,
    cluster_client: dict[str, str],
    slurm_cluster: SlurmCluster,
    simulator: Simulator,
    tmp_path: Path,
) -> Iterator[Site]:
    config = client_config(
        live_api.url,
        cluster_client,
        tmp_path / "token-cache",
        tools=simulator.tool_paths(),
        slurm_conf=str(slurm_cluster.conf_file),
        reservation_name=f"lm_test_{uuid.uuid4().hex[:8]}",
        lock_file=str(tmp_path / "reconcile.lock"),
        state_file=str(tmp_path / "reconcile-state.json"),
        log_file=None,
        tool_timeout=2.0,
    )
    yield Site(live_api, cluster_client, slurm_cluster, simulator, config)
    slurm_cluster.cancel_all_jobs()
    slurm = reconcile.slurm_of(config)
    if slurm.reservation(config.reservation_name) is not None:
        slurm.delete_reservation(config.reservation_name)


@pytest.fixture
def agent_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The agent's log lines, INFO and up (one per decision)."""
    caplog.set_level(logging.INFO, logger="agent")
    return caplog


@pytest.fixture
def abaqus_pool(site: Site) -> dict[str, Any]:
    """abaqus.abaqus: 10 tokens on lic1:27000 (flexlm), nothing checked out yet."""
    site.simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10})
    return site.add_configuration("flexlm", ["lic1:27000"], ["abaqus.abaqus"])


def checkout(site: Site, count: int, user: str = "desk", host: str = "pc1") -> None:
    site.simulator.checkout("lic1:27000", "abaqus", user, host, count)


# --- the reservation formula (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_used", "slurm_used", "bookings", "desktop_reserved", "expected"),
    [
        (40, 20, 5, 0, 25),  # tokens used elsewhere plus tokens granted but not yet checked out
        (3, 3, 3, 0, 3),  # our job checked out: it counts twice until its booking goes
        (0, 6, 2, 0, 0),  # jobs hold more than the server shows: never below 0
        (150, 0, 20, 0, 100),  # never above Slurm's total
        (10, 0, 0, 30, 40),  # the desktops' share is kept out of Slurm's reach too
    ],
)
def test_reserve_is_server_used_minus_slurm_used_plus_reserved_and_bookings_clamped(
    server_used: int, slurm_used: int, bookings: int, desktop_reserved: int, expected: int
) -> None:
    license_ = SlurmLicense(ABAQUS, total=100, used=slurm_used, reserved=0)

    target = reconcile.reserve_for(server_used, license_, bookings, desktop_reserved)

    assert target.reserve == expected


@pytest.mark.parametrize("requested", range(0, 12))
def test_slurm_lets_a_job_take_exactly_what_the_booking_rule_grants(requested: int) -> None:
    """Slurm's limit, Total - Used - reserve, is the API's: total - used - reserved - booked."""
    total, server_used, slurm_used, booked, desktop_reserved = 20, 7, 3, 2, 4
    license_ = SlurmLicense(ABAQUS, total=total, used=slurm_used, reserved=0)
    reserve = reconcile.reserve_for(server_used, license_, booked, desktop_reserved).reserve

    slurm_would_start = requested <= total - slurm_used - reserve
    api_would_grant = server_used + desktop_reserved + booked + requested <= total

    assert slurm_would_start == api_would_grant


@pytest.mark.parametrize("requested", range(0, 12))
@pytest.mark.parametrize("slurm_total", [8, 10, 1000])
def test_with_pool_figures_slurm_lets_a_job_take_what_the_rule_grants_and_never_more(
    requested: int, slurm_total: int
) -> None:
    """Another cluster reports the server's total 10 and more usage than our poll saw; Slurm
    may even count more licenses than the server has. Slurm's limit stays the booking rule's,
    which counts the pool's lowest total and highest used (never above it)."""
    pool = {"total": 10, "used": 5, "reserved": 1}
    our_poll_used, slurm_used, booked = 3, 2, 1
    license_ = SlurmLicense(ABAQUS, total=slurm_total, used=slurm_used, reserved=0)
    reserve = reconcile.reserve_for(
        max(our_poll_used, pool["used"]), license_, booked, pool["reserved"], pool["total"]
    ).reserve

    slurm_would_start = requested <= slurm_total - slurm_used - reserve
    api_would_grant = pool["used"] + pool["reserved"] + booked + requested <= pool["total"]

    if slurm_total >= pool["total"]:
        assert slurm_would_start == api_would_grant
    else:  # Slurm's own smaller count limits further: never more than the rule
        assert not slurm_would_start or api_would_grant


def test_reservation_targets_take_the_pools_figures_from_the_api(tmp_path: Path) -> None:
    config = client_config("http://api", {"client_id": "a", "client_secret": "s"}, tmp_path)
    configurations = [
        {
            "id": 1,
            "type": "flexlm",
            "features": [
                {
                    "name": "abaqus",
                    "product": {"name": "abaqus"},
                    "booked": 1,
                    "reserved": 0,
                    "pool": {"total": 10, "used": 6, "reserved": 2},
                }
            ],
            "license_servers": [],
        }
    ]
    poll = PollResult(configurations[0], {"abaqus": FeatureUsage(total=10, used=4)})
    licenses = {ABAQUS: SlurmLicense(ABAQUS, total=100, used=0, reserved=0)}

    [target] = reconcile.reservation_targets(config, configurations, [poll], licenses).values()

    # highest used 6 + highest reserved 2 + booked 1 + the 90 Slurm counts beyond the pool's 10
    assert target.reserve == 6 + 2 + 1 + 90


@pytest.mark.parametrize("state", ["CONFIGURING", "COMPLETING"])
def test_jobs_between_their_hooks_without_a_booking_keep_their_tokens_reserved(state: str) -> None:
    """A starting job not booked yet, or an ending one already released, still holds tokens
    in Slurm that neither the server nor the bookings show."""
    licenses = {ABAQUS: SlurmLicense(ABAQUS, total=10, used=6, reserved=0)}
    jobs = [
        SlurmJob("41", {ABAQUS: 4}, state),  # no API record
        SlurmJob("42", {ABAQUS: 2}, state),  # booked
    ]
    api_jobs = [
        {"slurm_job_id": "41", "bookings": []},  # its bookings are gone (grace time, epilog)
        {"slurm_job_id": "42", "bookings": [{"feature_id": 1, "quantity": 2}]},
    ]
    adjusted = reconcile.without_unbooked_jobs_between_hooks(licenses, jobs, api_jobs)

    assert adjusted[ABAQUS].used == 2
    # Server shows 4 used elsewhere, job 42's 2 are booked: job 41's 4 stay out of reach too.
    reserve = reconcile.reserve_for(4, adjusted[ABAQUS], bookings=2).reserve
    assert 10 - licenses[ABAQUS].used - reserve == 0


@pytest.mark.parametrize("requested", range(0, 14))
@pytest.mark.parametrize("slurm_total", [8, 12, 20])
def test_a_slurm_total_above_the_pools_is_held_back_so_slurm_starts_what_the_api_grants(
    requested: int, slurm_total: int
) -> None:
    """Licenses= says 20 or 12 while the server has 12 or 8: the difference is reserved too;
    a Slurm total below the pool's (8 < 12) leaves Slurm stricter than the API, nothing added."""
    pool_total, server_used, slurm_used, booked, desktop_reserved = 12, 3, 2, 1, 1
    license_ = SlurmLicense(ABAQUS, total=slurm_total, used=slurm_used, reserved=0)
    target = reconcile.reserve_for(server_used, license_, booked, desktop_reserved, pool_total)

    slurm_would_start = requested <= slurm_total - slurm_used - target.reserve
    api_would_grant = server_used + desktop_reserved + booked + requested <= pool_total

    if slurm_total >= pool_total:
        assert slurm_would_start == api_would_grant
        assert (f"above the server's {pool_total}" in target.explanation) == (
            slurm_total > pool_total
        )
    else:
        assert not slurm_would_start or api_would_grant


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        ({"total": 8, "report_status": "ok"}, 8),  # another member reported fewer: the API's
        ({"total": 20, "report_status": "ok"}, 12),  # the API holds more: what we read
        ({"total": 0, "report_status": None}, 12),  # never reported: 0 is no figure
        ({"total": 0, "report_status": "unparsable"}, 12),
    ],
    ids=["api-lower", "api-higher", "never-reported", "last-unparsable"],
)
def test_the_pool_total_is_the_lower_of_what_was_read_and_a_good_report(
    feature: dict[str, Any], expected: int
) -> None:
    assert reconcile.pool_total_of(FeatureUsage(12, 3), feature) == expected
    assert reconcile.pool_total_of(None, feature) is None


def test_a_totals_mismatch_is_warned_once_per_change(
    tmp_path: Path, agent_log: pytest.LogCaptureFixture
) -> None:
    def warnings_after(totals: dict[str, tuple[int, int]]) -> list[str]:
        agent_log.clear()
        reconcile.warn_about_totals(str(tmp_path), totals)
        return [r.getMessage() for r in agent_log.records if r.levelno == logging.WARNING]

    [above] = warnings_after({ABAQUS: (20, 12), ANSYS: (5, 5)})
    assert above.startswith(f"{ABAQUS}: Slurm's total 20 is above the license server's 12: ")
    assert f"set Licenses={ABAQUS}:12 in slurm.conf" in above
    assert warnings_after({ABAQUS: (20, 12), ANSYS: (5, 5)}) == [], "said once"
    assert warnings_after({ANSYS: (5, 5)}) == [], "not read this cycle: nothing new to say"
    [renewed] = warnings_after({ABAQUS: (20, 16), ANSYS: (4, 5)})[:1]
    assert renewed.startswith(f"{ABAQUS}: Slurm's total 20 is above the license server's 16")
    [below] = [w for w in warnings_after({ABAQUS: (16, 16), ANSYS: (3, 5)}) if ANSYS in w]
    assert below.startswith(f"{ANSYS}: Slurm's total 3 is below the license server's 5: ")
    assert "now equals the server's (16)" in agent_log.text
    assert warnings_after({ABAQUS: (16, 16), ANSYS: (3, 5)}) == []


def test_an_unreadable_server_reserves_the_whole_slurm_total() -> None:
    license_ = SlurmLicense(ABAQUS, total=100, used=30, reserved=0)

    target = reconcile.reserve_for(None, license_, bookings=0)

    assert target.reserve == 100
    assert "unreachable" in target.explanation


@pytest.mark.parametrize(
    ("server_used", "slurm_used", "expected", "why"),
    [
        (4, 2, 6, "as before: 6 held back; the job started since has no booking we know of"),
        (7, 2, 7, "desktops took 3 more: the formula (7 - 2 + 2) raises it at once"),
        (1, 2, 3, "the server shows 3 tokens freed: 3 fewer held back"),
        (4, 0, 6, "as before, no job in Slurm: same as the last successful cycle"),
    ],
)
def test_without_the_api_the_reservation_follows_the_server_but_never_drops_below_the_last(
    server_used: int, slurm_used: int, expected: int, why: str
) -> None:
    """Last successful cycle: server used 4, Slurm used 0, bookings 2: 6 held back."""
    last = reconcile.HeldBack(reserve=6, server_used=4)
    license_ = SlurmLicense(ABAQUS, total=10, used=slurm_used, reserved=6)

    target = reconcile.reserve_without_api(server_used, license_, 2, 0, last)

    assert target.reserve == expected, why
    assert "API unreachable" in target.explanation


def test_without_the_api_a_server_unreadable_at_the_last_cycle_is_sized_by_the_formula() -> None:
    """Everything was held back then: Slurm started nothing since, no floor is needed."""
    license_ = SlurmLicense(ABAQUS, total=10, used=2, reserved=10)
    last = reconcile.HeldBack(reserve=10, server_used=None)

    assert reconcile.reserve_without_api(3, license_, 2, 0, last).reserve == 3


def test_without_the_api_an_unreadable_server_still_reserves_everything() -> None:
    license_ = SlurmLicense(ABAQUS, total=10, used=0, reserved=0)
    last = reconcile.HeldBack(reserve=3, server_used=3)

    assert reconcile.reserve_without_api(None, license_, 0, 0, last).reserve == 10


# --- reconcile on the real stack ---------------------------------------------------------------


@pytest.mark.slurm
def test_reservation_is_created_updated_and_deleted_as_server_usage_changes(
    site: Site, abaqus_pool: dict[str, Any], agent_log: pytest.LogCaptureFixture
) -> None:
    site.reconcile()
    assert site.reserved() == {}, "nothing used elsewhere: no reservation"

    checkout(site, 4)
    site.reconcile()
    assert site.reserved() == {ABAQUS: 4}
    assert site.slurm_license(ABAQUS).reserved == 4
    feature = site.feature("abaqus.abaqus")
    assert (feature["total"], feature["used"], feature["report_status"]) == (10, 4, "ok")
    assert feature["report_interval"] == site.config.stat_interval, "fresh for a few of them"

    checkout(site, 3, user="other")
    site.reconcile()
    assert site.reserved() == {ABAQUS: 7}
    assert f"{ABAQUS} reserved 4 -> 7: server used 7, slurm used 0, bookings 0" in agent_log.text

    site.simulator.checkin("lic1:27000", "desk")
    site.simulator.checkin("lic1:27000", "other")
    site.reconcile()
    assert site.reserved() == {}
    assert site.slurm_license(ABAQUS).reserved == 0
    assert f"reservation {site.config.reservation_name} deleted" in agent_log.text


@pytest.mark.slurm
def test_reserved_tokens_keep_slurm_jobs_waiting(site: Site, abaqus_pool: dict[str, Any]) -> None:
    checkout(site, 8)
    site.reconcile()

    fits = site.slurm_cluster.submit("sleep 120", licenses={ABAQUS: 2})
    waits = site.slurm_cluster.submit("sleep 120", licenses={ABAQUS: 1})

    site.slurm_cluster.wait_for_job(fits, "RUNNING")
    wait_for(
        lambda: site.slurm_cluster.job_status(waits) == ("PENDING", "Licenses"),
        30,
        "the job to wait for licenses",
    )


@pytest.mark.slurm
def test_reports_keep_demand_reservation_and_checkouts_in_the_history(
    site: Site, abaqus_pool: dict[str, Any]
) -> None:
    checkout(site, 8)
    site.reconcile()  # reserves the 8 used on desktops
    waits = site.slurm_cluster.submit("sleep 120", licenses={ABAQUS: 3})
    wait_for(
        lambda: site.slurm_cluster.job_status(waits) == ("PENDING", "Licenses"),
        30,
        "the job to wait for licenses",
    )
    site.reconcile()

    feature_id = site.feature("abaqus.abaqus")["id"]
    usage = site.api.admin.get(f"/lm/features/{feature_id}/usage?step=1d")
    [point] = [point for point in usage["points"] if point["samples"]]
    assert (point["samples"], point["demand"], point["reservation"]) == (2, 3, 8)
    held = site.api.admin.get(f"/lm/features/{feature_id}/checkouts")
    assert held["checkouts"] == [{"username": "desk", "lead_host": "pc1", "count": 8}]


@pytest.mark.slurm
def test_a_booking_covers_its_job_until_the_checkout_shows_on_the_server(
    site: Site, abaqus_pool: dict[str, Any], agent_log: pytest.LogCaptureFixture
) -> None:
    site.reconcile()  # reports the pool: bookable
    job_id = site.run_job({ABAQUS: 3})
    assert site.book(job_id, {"abaqus.abaqus": 3}) == 201
    checkout(site, 2)

    site.reconcile()
    # server 2 (desktop) - slurm 3 (our job) + bookings 3 (our job, not checked out yet)
    assert site.reserved() == {ABAQUS: 2}
    assert site.jobs()[str(job_id)]["bookings"] != []

    checkout(site, 3, user="root", host=site.slurm_cluster.node_name)
    site.reconcile()
    # The job's checkout appeared: its booking goes, so it no longer counts twice.
    assert site.jobs()[str(job_id)]["bookings"] == []
    assert site.reserved() == {ABAQUS: 2}
    assert f"root@{site.slurm_cluster.node_name} checked out 3" in agent_log.text


@pytest.mark.slurm
def test_bookings_of_other_clusters_on_the_pool_are_reserved(
    site: Site, abaqus_pool: dict[str, Any], api_server: LiveApi
) -> None:
    other = api_server.server.create_client("cluster-b", AGENT_PERMISSIONS)
    site.add_configuration(
        "flexlm", ["lic1:27000"], ["abaqus.abaqus"], cluster_client_id=other["client_id"]
    )
    other_agent = ApiClient(client_config(site.api.url, other, api_server.state_dir / "b-cache"))
    other_agent.put(
        "/lm/features/by_client_id",
        [{"product_name": "abaqus", "feature_name": "abaqus", "total": 10, "used": 0}],
    )
    granted = other_agent.request(
        "POST",
        "/lm/jobs",
        json={
            "slurm_job_id": "77",
            "username": "bob",
            "lead_host": "b-node1",
            "bookings": [{"product_feature": "abaqus.abaqus", "quantity": 4}],
        },
    )
    assert granted.status == 201

    site.reconcile()

    assert site.reserved() == {ABAQUS: 4}
    assert "77" in site.jobs(), "another cluster's job is not ours to clean up"


@pytest.mark.slurm
def test_jobs_that_left_slurm_or_went_back_to_pending_are_deleted(
    site: Site, abaqus_pool: dict[str, Any], agent_log: pytest.LogCaptureFixture
) -> None:
    site.reconcile()
    running = site.run_job({ABAQUS: 1})
    held = site.slurm_cluster.submit("sleep 120", "--hold", licenses={ABAQUS: 1})
    site.slurm_cluster.wait_for_job(held, "PENDING")
    for job_id in (running, held, 999999):
        assert site.book(job_id, {"abaqus.abaqus": 1}) == 201

    site.reconcile()

    assert list(site.jobs()) == [str(running)]
    assert "job 999999 deleted with its bookings: it left Slurm" in agent_log.text
    assert f"job {held} deleted with its bookings: it is PENDING" in agent_log.text


@pytest.mark.slurm
def test_a_booking_without_checkout_outlives_the_grace_time_until_its_maximum_age(
    site: Site, agent_log: pytest.LogCaptureFixture
) -> None:
    site.simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10})
    site.simulator.add_server("rlm", "lic2:5053", {"cfd": 5})
    abaqus = site.add_configuration("flexlm", ["lic1:27000"], ["abaqus.abaqus"], grace_time=0)
    site.add_configuration("rlm", ["lic2:5053"], ["ansys.cfd"], grace_time=0)
    site.reconcile()
    job_id = site.run_job({ABAQUS: 2, ANSYS: 1})
    assert site.book(job_id, {"abaqus.abaqus": 2, "ansys.cfd": 1}) == 201
    checkout(site, 3)

    site.reconcile()
    # Past the grace time, not checked out yet (a solver still reading its input): kept.
    assert len(site.jobs()[str(job_id)]["bookings"]) == 2
    # abaqus: server 3 - slurm 2 + booking 2; ansys: server 0 - slurm 1 + booking 1.
    assert site.reserved() == {ABAQUS: 3}

    site.api.admin.put(f"/lm/configurations/{abaqus['id']}", {"booking_max_age": 0})
    site.reconcile()

    job = site.jobs()[str(job_id)]
    assert [booking["product_feature"] for booking in job["bookings"]] == ["ansys.cfd"]
    assert "no checkout seen within its maximum age of 0 s" in agent_log.text
    # abaqus: server 3 - slurm 2, no booking any more.
    assert site.reserved() == {ABAQUS: 1}


@pytest.mark.slurm
def test_an_unreachable_pool_reserves_everything_and_refuses_bookings(
    site: Site, abaqus_pool: dict[str, Any], agent_log: pytest.LogCaptureFixture
) -> None:
    site.simulator.add_server("flexlm", "lic1b:27000", {"abaqus": 10})
    site.api.admin.post(
        "/lm/license_servers", {"config_id": abaqus_pool["id"], "host": "lic1b", "port": 27000}
    )
    site.simulator.fault("lic1:27000", "down")
    site.simulator.fault("lic1b:27000", "garbage")

    site.reconcile()

    assert site.reserved() == {ABAQUS: site.slurm_license(ABAQUS).total}
    # One mirror down, the other printing what no parser knows: the admin must look at the
    # output, so the status says unparsable rather than unreachable.
    assert site.feature("abaqus.abaqus")["report_status"] == "unparsable"
    assert site.book(1234, {"abaqus.abaqus": 1}) == 409
    assert "license server unreachable (fail closed)" in agent_log.text

    site.simulator.fault("lic1b:27000", "down")
    site.reconcile()

    assert site.feature("abaqus.abaqus")["report_status"] == "unreachable"


@pytest.mark.slurm
@pytest.mark.parametrize("server_type", SERVER_TYPES)
def test_output_not_understood_is_unparsable_in_the_api_logged_at_error_and_kept(
    site: Site, server_type: str, agent_log: pytest.LogCaptureFixture
) -> None:
    site.simulator.add_server(server_type, "garbled:2700", {"solver": 8})
    site.simulator.fault("garbled:2700", "garbage")
    site.add_configuration(server_type, ["garbled:2700"], ["cae.solver"])

    site.reconcile()

    assert site.feature("cae.solver")["report_status"] == "unparsable"
    assert site.book(77, {"cae.solver": 1}) == 409
    tool = site.simulator.tool(server_type)
    [error] = [r for r in agent_log.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith(
        f"license server garbled:2700 ({server_type}): output not understood; command: {tool} "
    )
    [kept] = (Path(site.config.state_dir) / "unparsable").iterdir()
    command = shlex.join([tool, *tool_arguments(server_type)])
    header, output = kept.read_text().split("\n", 1)
    assert header == f"# command: {command}"
    assert GARBAGE in output
    first = next(line for line in output.splitlines() if line.strip()).strip()
    escaped = first.replace("\x1b", "\\x1b")  # one log line stays one printable line
    assert "first lines: " + escaped in error.getMessage()
    assert error.getMessage().endswith(f"raw output kept in {kept}")


def tool_arguments(server_type: str) -> list[str]:
    from agent.tools import tool_command

    return tool_command(server_type, "tool", "garbled", 2700).argv[1:]


@pytest.mark.slurm
def test_kept_outputs_are_bounded(site: Site) -> None:
    site.simulator.add_server("rlm", "garbled:2700", {"solver": 8})
    site.simulator.fault("garbled:2700", "garbage")
    site.add_configuration("rlm", ["garbled:2700"], ["cae.solver"])
    kept = Path(site.config.state_dir) / "unparsable"
    kept.mkdir(parents=True)
    for n in range(KEPT_OUTPUTS + 5):
        (kept / f"20000101T0000{n:02d}-1-old.txt").write_text("old")

    site.reconcile()

    files = sorted(kept.iterdir())
    assert len(files) == KEPT_OUTPUTS
    assert files[-1].read_bytes().endswith(GARBAGE.encode()), "the newest is kept"


@pytest.mark.slurm
def test_a_hung_server_is_skipped_for_its_mirror(site: Site) -> None:
    site.simulator.add_server("flexlm", "hung:27000", {"abaqus": 10})
    site.simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10})
    site.simulator.fault("hung:27000", "hang")
    site.add_configuration("flexlm", ["hung:27000", "lic1:27000"], ["abaqus.abaqus"])
    checkout(site, 6)

    site.reconcile()

    assert site.reserved() == {ABAQUS: 6}
    assert site.feature("abaqus.abaqus")["report_status"] == "ok"
    assert site.simulator.running_tools() == []


@pytest.mark.slurm
def test_an_overlapping_run_exits_quietly_and_changes_nothing(
    site: Site, abaqus_pool: dict[str, Any]
) -> None:
    checkout(site, 5)

    with exclusive_lock(site.config.lock_file) as acquired:
        assert acquired
        assert reconcile.run(site.config) == 0
        assert site.reserved() == {}
        assert site.feature("abaqus.abaqus")["reported_at"] is None

    site.reconcile()
    assert site.reserved() == {ABAQUS: 5}


def test_a_lock_file_that_cannot_be_created_fails_the_run_with_one_clear_line(
    site: Site, agent_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    config = replace(site.config, lock_file=str(not_a_folder / "agent.lock"))

    assert reconcile.run(config) == 1
    assert f"cannot use lock file {not_a_folder / 'agent.lock'}" in agent_log.text
    assert "Traceback" not in agent_log.text


@pytest.mark.slurm
def test_a_configured_feature_missing_from_slurm_is_skipped_with_a_warning(
    site: Site, agent_log: pytest.LogCaptureFixture
) -> None:
    site.simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10, "cae": 4})
    site.add_configuration("flexlm", ["lic1:27000"], ["abaqus.abaqus", "abaqus.cae"])
    checkout(site, 2)

    site.reconcile()

    assert site.reserved() == {ABAQUS: 2}
    assert "abaqus.cae@flexlm is not a license of this Slurm cluster: skipped" in agent_log.text
    assert site.feature("abaqus.cae")["total"] == 4, "its usage is still reported"


def test_an_api_that_cannot_be_reached_fails_the_run_with_one_clear_line(
    tmp_path: Path, agent_log: pytest.LogCaptureFixture
) -> None:
    config = client_config(
        f"http://127.0.0.1:{free_port()}",
        {"client_id": "cluster-a", "client_secret": "x"},
        tmp_path / "cache",
        lock_file=str(tmp_path / "reconcile.lock"),
        state_file=str(tmp_path / "reconcile-state.json"),
        log_file=None,
    )

    assert reconcile.run(config) == 1
    assert "reconcile failed: cannot reach http://127.0.0.1:" in agent_log.text
    assert "no earlier cycle recorded" in agent_log.text


@pytest.mark.slurm
def test_report_prints_usage_and_checkouts_and_changes_nothing(
    site: Site, abaqus_pool: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    checkout(site, 4, user="alice", host="ws12")
    site.simulator.add_server("rlm", "lic2:5053", {"cfd": 5})
    site.simulator.fault("lic2:5053", "down")
    site.add_configuration("rlm", ["lic2:5053"], ["ansys.cfd"])

    exit_code = reconcile.report(site.config)

    output = capsys.readouterr().out
    assert exit_code == 1, "a pool could not be read"
    assert (
        "abaqus.abaqus: status ok, total 10, used 4, checkouts 1, slurm total 10, mirror lic1:27000"
        in output
    )
    assert "alice@ws12 4" in output
    assert "UNREACHABLE: lic2:5053: exit" in output
    assert "ansys.cfd: status unreachable, slurm total" in output
    assert site.reserved() == {}
    assert site.feature("abaqus.abaqus")["reported_at"] is None


def agent_yaml_of(site: Site, path: Path, **overrides: Any) -> Path:
    """agent.yaml with the site's settings, for running `lm-agent` as a process."""
    config = site.config
    settings = {
        "api_url": config.api_url,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "token_cache_dir": config.token_cache_dir,
        "tools": {"lmutil": config.tools.lmutil, "rlmutil": config.tools.rlmutil,
                  "scontrol": config.tools.scontrol, "squeue": config.tools.squeue},
        "slurm_conf": config.slurm_conf,
        "reservation_name": config.reservation_name,
        "lock_file": config.lock_file,
        "state_file": config.state_file,
        "log_file": str(path.with_name("agent.log")),
        "tool_timeout": config.tool_timeout,
        **overrides,
    }  # fmt: skip
    return write_agent_yaml(path, settings)


@pytest.mark.slurm
@pytest.mark.parametrize(
    ("arguments", "stop"),
    [(["reconcile"], signal.SIGKILL), (["reconcile", "--loop"], signal.SIGTERM)],
    ids=["SIGKILL", "SIGTERM-loop"],
)
def test_a_reconcile_stopped_while_its_tool_hangs_leaves_no_tool_running(
    site: Site, tmp_path: Path, arguments: list[str], stop: signal.Signals
) -> None:
    site.simulator.add_server("flexlm", "hung:27000", {"abaqus": 10})
    site.simulator.fault("hung:27000", "hang")
    site.add_configuration("flexlm", ["hung:27000"], ["abaqus.abaqus"])
    # The tool would be killed at its time limit only in an hour: it must die with the agent.
    config_file = agent_yaml_of(site, tmp_path / "agent.yaml", tool_timeout=3600)
    agent = subprocess.Popen(
        [LM_AGENT, "--config", str(config_file), *arguments],
        env={},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(site.simulator.running_tools, 30, "the agent to run the hanging tool")
        agent.send_signal(stop)
        agent.wait(timeout=10)
    finally:
        if agent.poll() is None:
            agent.kill()
    wait_for(
        lambda: site.simulator.running_tools() == [], 5, "the hanging tool to die with the agent"
    )


def unreachable_api(site: Site) -> AgentConfig:
    """The site's settings with an API address nobody answers at (the API is down)."""
    return replace(site.config, api_url=f"http://127.0.0.1:{free_port()}")


@pytest.mark.slurm
def test_while_the_api_is_down_the_reservation_follows_the_license_server(
    site: Site, abaqus_pool: dict[str, Any], agent_log: pytest.LogCaptureFixture
) -> None:
    checkout(site, 2)
    site.reconcile()
    assert site.reserved() == {ABAQUS: 2}
    api_down = unreachable_api(site)

    checkout(site, 3, user="other")
    assert reconcile.run(api_down) == 1
    assert site.reserved() == {ABAQUS: 5}, "desktop checkouts raise it within one cycle"
    assert "reconcile ran degraded: cannot reach" in agent_log.text

    # A job Slurm starts meanwhile (policy allow) has no booking the agent knows of: its
    # tokens stay held although it is in Slurm's Used and not yet on the server.
    site.run_job({ABAQUS: 2})
    assert reconcile.run(api_down) == 1
    assert site.reserved() == {ABAQUS: 5}
    assert site.slurm_license(ABAQUS).total - site.slurm_license(ABAQUS).used - 5 == 3

    site.simulator.checkin("lic1:27000", "other")
    assert reconcile.run(api_down) == 1
    # Freed on the server: 3 back (2 desktop + 2 job out of 10 leave 6 for Slurm).
    assert site.reserved() == {ABAQUS: 2}

    site.reconcile()
    assert "API reachable again: caught up" in agent_log.text
    assert site.feature("abaqus.abaqus")["used"] == 2


@pytest.mark.slurm
def test_an_api_failing_mid_cycle_still_sizes_the_reservation(
    site: Site, abaqus_pool: dict[str, Any], agent_log: pytest.LogCaptureFixture
) -> None:
    site.reconcile()
    checkout(site, 4)
    api = site.agent_api
    real_put = api.put

    def put_fails(path: str, json: Any) -> Any:
        api.base_url = f"http://127.0.0.1:{free_port()}"  # the API went down after our poll
        return real_put(path, json)

    api.put = put_fails  # type: ignore[method-assign]

    assert reconcile.reconcile(site.config, api, site.slurm) is False
    assert site.reserved() == {ABAQUS: 4}
    assert "reconcile ran degraded" in agent_log.text


# --- two controllers: the reconcile lease -------------------------------------------------------

LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"


@dataclass
class Controller:
    """One controller host's agent: `lm-agent reconcile --loop` with its own lock and log."""

    name: str
    log: Path
    process: subprocess.Popen[bytes]

    def lines(self, *words: str) -> list[tuple[float, str]]:
        """(time, line) of the log lines holding every word."""
        found = []
        for line in self.log.read_text().splitlines() if self.log.exists() else []:
            if all(word in line for word in words):
                stamp = datetime.strptime(line[:23], LOG_TIME).timestamp()
                found.append((stamp, line))
        return found

    def cycles(self) -> list[tuple[float, float]]:
        """(taken, released) times of every cycle this agent ran under the lease."""
        starts = [t for t, _ in self.lines("reconcile lease taken by")]
        ends = [t for t, _ in self.lines("reconcile lease released")]
        return list(zip(starts, ends, strict=False))


def start_controller(site: Site, tmp_path: Path, name: str, interval: int) -> Controller:
    folder = tmp_path / name
    folder.mkdir()
    config_file = agent_yaml_of(
        site,
        folder / "agent.yaml",
        lock_file=str(folder / "reconcile.lock"),
        state_file=str(folder / "reconcile-state.json"),
        token_cache_dir=str(folder / "cache"),
        stat_interval=interval,
        log_level="DEBUG",
    )
    process = subprocess.Popen(
        [LM_AGENT, "--config", str(config_file), "reconcile", "--loop"],
        env={},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Controller(name, folder / "agent.log", process)


def stop(controllers: list[Controller]) -> None:
    for controller in controllers:
        if controller.process.poll() is None:
            controller.process.send_signal(signal.SIGTERM)
    for controller in controllers:
        controller.process.wait(timeout=30)


@pytest.fixture
def slow_pool(site: Site) -> None:
    """abaqus on lic1:27000, whose tool takes 1 s: a cycle lasts long enough to overlap."""
    site.simulator.add_server("flexlm", "lic1:27000", {"abaqus": 10})
    site.simulator.run("latency", "--server", "lic1:27000", "1")
    site.add_configuration("flexlm", ["lic1:27000"], ["abaqus.abaqus"])


@pytest.mark.slurm
def test_two_controllers_started_together_reconcile_one_at_a_time(
    site: Site, slow_pool: None, tmp_path: Path
) -> None:
    controllers = [start_controller(site, tmp_path, name, interval=3) for name in ("ctl1", "ctl2")]
    try:
        wait_for(
            lambda: sum(len(c.cycles()) for c in controllers) >= 5, 60, "five reconcile cycles"
        )
    finally:
        stop(controllers)

    cycles = sorted(cycle for controller in controllers for cycle in controller.cycles())
    for (_, previous_end), (start, _) in pairwise(cycles):
        assert start >= previous_end, f"two cycles overlapped: {cycles}"
    waits = [c.lines("reconcile lease held by") for c in controllers]
    assert any(waits), "the agents never asked at the same time"
    assert not [c.lines("ERROR") for c in controllers if c.lines("ERROR")]
    assert site.reserved() == {}, "the reservation agrees with the pool: nothing used"


@pytest.mark.slurm
def test_killing_the_holder_lets_the_other_controller_take_over_within_one_interval(
    site: Site, slow_pool: None, tmp_path: Path
) -> None:
    interval = 4
    site.simulator.run("latency", "--server", "lic1:27000", "3")  # kill it in the middle of a cycle
    controllers = [
        start_controller(site, tmp_path, name, interval=interval) for name in ("ctl1", "ctl2")
    ]
    try:
        holder = wait_for(
            lambda: next((c for c in controllers if c.lines("reconcile lease taken by")), None),
            60,
            "one agent to take the lease",
        )
        holder.process.kill()
        killed_at = time.time()
        holder.process.wait(timeout=30)
        other = next(c for c in controllers if c is not holder)

        def taken_after_the_kill() -> float | None:
            times = [t for t, _ in other.lines("reconcile lease taken by") if t > killed_at]
            return times[0] if times else None

        taken_at = wait_for(taken_after_the_kill, 3 * interval, "the other agent to take over")
    finally:
        stop(controllers)

    assert taken_at - killed_at <= interval
    assert other.cycles(), "the other agent completed a cycle"
