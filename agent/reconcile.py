"""`lm-agent reconcile` (what cron runs) and `lm-agent report`.

One reconcile cycle:
1. read this cluster's configurations from the API and poll every license server;
2. report total/used per feature (a pool that could not be read is sent as unreachable or
   unparsable, so the API refuses bookings on it);
3. read the API's jobs, then Slurm's queue, and clean up: jobs that left Slurm, ended or went
   back to pending are deleted; bookings whose checkout now shows on the license server, or
   older than their configuration's maximum age (`_booking_expiry`), are deleted;
4. read Slurm's queue and licenses again, then the API's bookings, and size the ONE
   license-only reservation (`reserve_for`): create, update or delete it. Each change is one
   log line an admin can grep.

When the API does not answer at some step, the cycle ends degraded (`guard_without_api`): it
still polls the license servers and sizes the reservation from what the last successful cycle
knew, kept in `state_file` (agent.last_cycle), and the next cycle with the API catches up.

A cycle runs under a local lock file (one run per host) and the cluster's reconcile lease (one
run per cluster across controller hosts, agent.lease).

Hooks run at any moment, so the order of the reads matters. For cleanup the API's jobs come
before squeue: a job posted after our squeue snapshot would otherwise look like one that left
Slurm. For the reservation Slurm comes before the API (see without_unbooked_jobs_between_hooks).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.api import ApiClient, ApiError
from agent.config import AgentConfig
from agent.last_cycle import HeldBack, LastCycle
from agent.lease import LeaseHeld, ReconcileLease, reconcile_lease
from agent.lock import exclusive_lock
from agent.parsers import Checkout, FeatureUsage
from agent.polling import PollResult, poll_all
from agent.slurm import Slurm, SlurmError, SlurmJob, SlurmLicense
from lm_common.facts import REPORT_OK, REPORT_UNREACHABLE

log = logging.getLogger("agent.reconcile")

CONFIGURATIONS_PATH = "/lm/configurations/by_client_id"
FEATURES_PATH = "/lm/features/by_client_id"
JOBS_PATH = "/lm/jobs/by_client_id"
# Slurm answers in milliseconds; this only bounds a controller that has stopped answering.
SLURM_TIMEOUT = 30.0
# States in which a job holds its Slurm licenses; any other state ends its bookings. A
# COMPLETING job still counts in Slurm's Used until its EpilogSlurmctld is done.
ACTIVE_JOB_STATES = frozenset(
    {"CONFIGURING", "RUNNING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "COMPLETING"}
)
# States in which Slurm counts a job's licenses while its hooks may hold no booking for it:
# the prolog has not booked yet, or the epilog has already released.
BETWEEN_HOOK_STATES = frozenset({"CONFIGURING", "COMPLETING"})


@dataclass(frozen=True)
class Tracked:
    """A configured feature with what it needs for cleanup: its pool's poll and grace time."""

    configuration: Mapping[str, Any]
    feature: Mapping[str, Any]
    poll: PollResult

    @property
    def product_feature(self) -> str:
        return f"{self.feature['product']['name']}.{self.feature['name']}"

    @property
    def usage(self) -> FeatureUsage | None:
        return self.poll.usage(self.feature["name"])

    @property
    def status(self) -> str:
        """The report status: the pool's, or unreachable when its server did not list this
        feature or printed an error for it (no pool to book from, as far as we can tell)."""
        if not self.poll.reachable:
            return self.poll.status
        return REPORT_OK if self.usage is not None else REPORT_UNREACHABLE

    @property
    def why_not_read(self) -> str:
        """Why a readable server gave no usage for this feature."""
        error = self.poll.feature_error(self.feature["name"])
        return f"the server printed: {error}" if error else "not on the server"


@dataclass(frozen=True)
class LicenseTarget:
    """How many tokens of one Slurm license the reservation must hold, and why."""

    reserve: int
    explanation: str


def slurm_of(config: AgentConfig) -> Slurm:
    return Slurm(
        config.tools.scontrol,
        config.tools.squeue,
        slurm_conf=config.slurm_conf,
        timeout=SLURM_TIMEOUT,
    )


def run(config: AgentConfig) -> int:
    """One reconcile cycle under the lock: 0 when done (or another run holds the lock), 1 when
    it failed or ran degraded (without the API)."""
    try:
        with exclusive_lock(config.lock_file) as acquired:
            if not acquired:
                log.debug("another reconcile holds %s; nothing to do", config.lock_file)
                return 0
            api = ApiClient(config)
            with reconcile_lease(config, api) as lease:
                return 0 if reconcile(config, api, slurm_of(config), lease) else 1
    except LeaseHeld:  # another controller's agent reconciles this cluster now
        return 0
    except (ApiError, SlurmError) as error:
        log.error("reconcile failed: %s", error)
        return 1
    except OSError as error:  # the lock file's folder is missing or not ours (cron's user)
        log.error("reconcile failed: cannot use lock file %s: %s", config.lock_file, error.strerror)
        return 1


def reconcile(
    config: AgentConfig, api: ApiClient, slurm: Slurm, lease: ReconcileLease | None = None
) -> bool:
    """Poll, report, clean up and size the reservation (see the module docstring).

    Without an answer from the API at any step, the cycle ends degraded (`guard_without_api`):
    False. True when the whole cycle ran. With a `lease` lost meanwhile (another controller's
    agent took over), the reservation is left to that agent: False.
    """
    try:
        configurations = api.get(CONFIGURATIONS_PATH)
    except ApiError as error:
        guard_without_api(config, slurm, error, polls=None)
        return False
    polls = poll_all(configurations, config.tool_path, config.tool_timeout, config.state_dir)
    figures = slurm_figures(config, configurations, slurm)
    try:
        api.put(FEATURES_PATH, usage_reports(polls, config.stat_interval, figures))
        tracked = {item.feature["id"]: item for item in tracked_features(polls)}
        clean_up(api, api.get_all(JOBS_PATH), slurm.jobs(), tracked, now=datetime.now(UTC))
        # Slurm first, then the API: a hook that books or releases in between is then seen
        # consistently (without_unbooked_jobs_between_hooks).
        slurm_jobs, slurm_licenses = slurm.jobs(), slurm.licenses()
        refreshed = api.get(CONFIGURATIONS_PATH)  # `booked` after our deletions
        licenses = without_unbooked_jobs_between_hooks(
            slurm_licenses, slurm_jobs, api.get_all(JOBS_PATH)
        )
    except ApiError as error:
        guard_without_api(config, slurm, error, polls=polls)
        return False
    targets = reservation_targets(config, refreshed, polls, licenses)
    if lease is not None and lease.lost:
        return False
    apply_reservation(slurm, config, targets)
    _remember(config, refreshed, polls, targets)
    return True


def _remember(
    config: AgentConfig,
    configurations: Sequence[Mapping[str, Any]],
    polls: Sequence[PollResult],
    targets: Mapping[str, LicenseTarget],
) -> None:
    """Keep what this successful cycle knew for cycles that cannot reach the API."""
    previous = LastCycle.load(config.state_file)
    if previous is not None and previous.degraded_since is not None:
        log.info(
            "API reachable again: caught up after cycles without it since %s",
            previous.degraded_since,
        )
    used = _server_used_by_license(config, configurations, polls)
    LastCycle.record(
        config.state_file,
        configurations,
        {name: HeldBack(target.reserve, used.get(name)) for name, target in targets.items()},
    )


def guard_without_api(
    config: AgentConfig, slurm: Slurm, error: ApiError, polls: Sequence[PollResult] | None
) -> None:
    """Size the reservation without the API, from the last successful cycle's knowledge.

    The license servers are polled (unless this cycle already did) with the configurations
    last seen, and each license is held back by `reserve_without_api`. With no earlier cycle
    to go by, the reservation is left as it is.
    """
    last = LastCycle.load(config.state_file)
    if last is None:
        log.error(
            "reconcile failed: %s; no earlier cycle recorded in %s, reservation left as it is",
            error,
            config.state_file,
        )
        return
    log.warning(
        "reconcile ran degraded: %s; reservation sized from the license servers now and the "
        "bookings seen at %s",
        error,
        last.saved_at,
    )
    if polls is None:
        polls = poll_all(
            last.configurations, config.tool_path, config.tool_timeout, config.state_dir
        )
    targets = reservation_targets(
        config, last.configurations, polls, slurm.licenses(), without_api=last.licenses
    )
    apply_reservation(slurm, config, targets)
    last.record_degraded(_held_back(config, last.configurations, polls, targets))


def _held_back(
    config: AgentConfig,
    configurations: Sequence[Mapping[str, Any]],
    polls: Sequence[PollResult],
    targets: Mapping[str, LicenseTarget],
) -> dict[str, HeldBack]:
    """What the reservation now holds per license whose server was read, with its usage."""
    used = _server_used_by_license(config, configurations, polls)
    return {
        name: HeldBack(target.reserve, used[name])
        for name, target in targets.items()
        if used.get(name) is not None
    }


def reserve_without_api(
    server_used: int | None,
    slurm_license: SlurmLicense,
    bookings: int,
    desktop_reserved: int,
    last: HeldBack | None,
    pool_total: int | None = None,
) -> LicenseTarget:
    """What to hold back while the API cannot be reached (docs/architecture.md, "Degraded mode").

    The formula of `reserve_for` with the bookings last seen, but never less than the last
    cycle held back, minus what the license server shows freed since then:
    `max(formula, last_reserve - max(0, last_server_used - server_used))`.
    Slurm could only start jobs within what that reservation left free; jobs it started since
    (granted just before the outage, or allowed unchecked) are in slurm_used but in no booking
    we know of, so the formula alone would hand their tokens out again. The floor keeps them
    held until the server shows tokens coming back.
    """
    target = reserve_for(server_used, slurm_license, bookings, desktop_reserved, pool_total)
    if server_used is None or last is None:
        return replace(target, explanation=f"{target.explanation} (API unreachable)")
    # A server unreadable at the last cycle had everything held back: Slurm has started no job
    # on this license since, and the formula alone knows every job it runs (no floor).
    floor = 0 if last.server_used is None else last.reserve - max(0, last.server_used - server_used)
    reserve = min(max(target.reserve, floor, 0), slurm_license.total)
    return LicenseTarget(
        reserve,
        f"{target.explanation} (API unreachable: bookings as last seen; at least {floor}, "
        f"the {last.reserve} held back last cycle minus tokens freed on the server since)",
    )


def _features_by_license(
    config: AgentConfig, configurations: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(feature, configuration) per Slurm license name of every configured feature."""
    found: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for configuration in configurations:
        for feature in configuration["features"]:
            name = config.slurm_license_name(
                feature["product"]["name"], feature["name"], configuration["type"]
            )
            found[name] = (feature, configuration)
    return found


def _usage_by_license(
    config: AgentConfig,
    configurations: Sequence[Mapping[str, Any]],
    polls: Sequence[PollResult],
) -> dict[str, FeatureUsage | None]:
    """What the license server says per Slurm license name (None: not read)."""
    poll_by_id = {poll.configuration["id"]: poll for poll in polls}
    found: dict[str, FeatureUsage | None] = {}
    for name, (feature, configuration) in _features_by_license(config, configurations).items():
        poll = poll_by_id.get(configuration["id"])
        found[name] = poll.usage(feature["name"]) if poll else None
    return found


def _server_used_by_license(
    config: AgentConfig,
    configurations: Sequence[Mapping[str, Any]],
    polls: Sequence[PollResult],
) -> dict[str, int | None]:
    """Tokens in use on the license server per Slurm license name (None: not read)."""
    usage_of = _usage_by_license(config, configurations, polls)
    return {name: usage.used if usage else None for name, usage in usage_of.items()}


def without_unbooked_jobs_between_hooks(
    licenses: Mapping[str, SlurmLicense],
    slurm_jobs: Sequence[SlurmJob],
    api_jobs: Sequence[Mapping[str, Any]],
) -> dict[str, SlurmLicense]:
    """Slurm's licenses, not counting in `used` the starting or ending jobs the API has no
    record of.

    Slurm counts a job's licenses in Used from its allocation (CONFIGURING, while its
    PrologSlurmctld is still asking the API) until its EpilogSlurmctld is done (COMPLETING,
    after the epilog may already have deleted its record). In those windows its tokens are
    neither checked out on the server nor booked, so subtracting them as slurm_used would shrink
    the reservation and let Slurm start another job on tokens used elsewhere; that job's prolog
    must then refuse and requeue it (both seen in the end-to-end scenarios).

    `slurm_jobs` and `licenses` must be read before `api_jobs` (and the features' `booked`):
    a job whose hook books or releases in between is then either counted in both Used and
    `booked`, or starting/ending in Slurm with no booking in the API, and left out of Used.
    """
    booked_jobs = {job["slurm_job_id"] for job in api_jobs if job["bookings"]}
    unbooked: dict[str, int] = {}
    for job in slurm_jobs:
        if job.state in BETWEEN_HOOK_STATES and job.job_id not in booked_jobs:
            for name, count in job.licenses.items():
                unbooked[name] = unbooked.get(name, 0) + count
    return {
        name: replace(license_, used=max(license_.used - unbooked.get(name, 0), 0))
        for name, license_ in licenses.items()
    }


def tracked_features(polls: Iterable[PollResult]) -> Iterable[Tracked]:
    for poll in polls:
        for feature in poll.configuration["features"]:
            yield Tracked(poll.configuration, feature, poll)


def slurm_figures(
    config: AgentConfig, configurations: Sequence[Mapping[str, Any]], slurm: Slurm
) -> dict[int, dict[str, int]]:
    """Per feature id, for the usage history: what our reservation holds (the last cycle sized
    it) and what jobs pending for licenses want. Without squeue only demand is left out: the
    report itself must go."""
    try:
        demand: dict[str, int] | None = slurm.license_demand()
    except SlurmError as error:
        log.warning("license demand left out of the report: %s", error)
        demand = None
    last = LastCycle.load(config.state_file)
    figures: dict[int, dict[str, int]] = {}
    for name, (feature, _) in _features_by_license(config, configurations).items():
        entry = figures.setdefault(feature["id"], {})
        if demand is not None:
            entry["demand"] = demand.get(name, 0)
        if last is not None and name in last.licenses:
            entry["reservation"] = last.licenses[name].reserve
    return figures


def usage_reports(
    polls: Sequence[PollResult],
    interval: int,
    figures: Mapping[int, Mapping[str, int]] | None = None,
) -> list[dict[str, Any]]:
    """The body of PUT /lm/features/by_client_id: one entry per configured feature.

    Status ok with the figures, or (figures left as last reported) unreachable or unparsable:
    the API refuses bookings on both. A feature its readable server does not list, or prints an
    error for, is reported unreachable too: the server has no such pool (a typo, an expired
    license file), and claiming 0 used would invite bookings.
    Each entry states `interval`, the seconds until our next report: the API trusts a report
    for a few such intervals only (LM_REPORT_FRESH_INTERVALS).
    With it go the history's figures: the checkouts read, and `figures` (slurm_figures).
    """
    reports = []
    for item in tracked_features(polls):
        report: dict[str, Any] = {
            "product_name": item.feature["product"]["name"],
            "feature_name": item.feature["name"],
            "interval": interval,
            "status": item.status,
            **(figures or {}).get(item.feature["id"], {}),
        }
        usage = item.usage
        if usage is not None:
            report.update(total=usage.total, used=usage.used, checkouts=checkouts(usage))
            if usage.expires is not None:
                report["expires"] = usage.expires.isoformat()
        elif item.poll.reachable:
            log.warning(
                "%s: %s (%s): reported unreachable",
                item.product_feature,
                item.why_not_read,
                item.poll.server,
            )
        reports.append(report)
    for poll in polls:
        if not poll.reachable:
            log.warning(
                "configuration %s (%s) %s, its features reported so: %s",
                poll.configuration["name"],
                poll.configuration["type"],
                poll.status,
                poll.reason,
            )
    return reports


def checkouts(usage: FeatureUsage) -> list[dict[str, Any]]:
    """A report's checkouts; names cut to what the API stores (255), never refused for it."""
    return [
        {"username": use.username[:255], "lead_host": use.lead_host[:255], "count": use.count}
        for use in usage.uses
    ]


def clean_up(
    api: ApiClient,
    api_jobs: Sequence[Mapping[str, Any]],
    slurm_jobs: Sequence[SlurmJob],
    tracked: Mapping[int, Tracked],
    now: datetime,
) -> None:
    """Delete jobs Slurm no longer runs, then bookings already checked out or past their age."""
    state_of = {job.job_id: job.state for job in slurm_jobs}
    unclaimed: dict[int, list[Checkout]] = {}  # checkouts not yet matched to a booking
    for job in api_jobs:
        state = state_of.get(job["slurm_job_id"])
        if state not in ACTIVE_JOB_STATES:
            why = "left Slurm" if state is None else f"is {state}"
            if _delete(api, f"/lm/jobs/{job['id']}"):
                log.info("job %s deleted with its bookings: it %s", job["slurm_job_id"], why)
            continue
        for booking in job["bookings"]:
            item = tracked.get(booking["feature_id"])
            if item is None:
                continue  # a feature of a configuration created after our poll
            expired = _booking_expiry(booking, job, item, now, unclaimed)
            if expired and _delete(api, f"/lm/bookings/{booking['id']}"):
                log.info(
                    "booking of job %s deleted (%s x%s): %s",
                    job["slurm_job_id"],
                    item.product_feature,
                    booking["quantity"],
                    expired,
                )


def _booking_expiry(
    booking: Mapping[str, Any],
    job: Mapping[str, Any],
    item: Tracked,
    now: datetime,
    unclaimed: dict[int, list[Checkout]],
) -> str | None:
    """Why a booking of a running job can go, or None while it must stay.

    A booking holds its tokens until the job's checkout shows on the license server (same
    user, lead host and count), or, when none ever shows, until its maximum age: the
    configuration's booking_max_age, never less than its grace_time. A job still starting up
    (a solver reading its input for minutes) thus keeps its tokens past the grace time.
    """
    configuration = item.configuration
    max_age = max(configuration["grace_time"], configuration.get("booking_max_age", 0))
    age = (now - _timestamp(booking["created_at"])).total_seconds()
    if age >= max_age:
        return f"no checkout seen within its maximum age of {max_age} s"
    usage = item.usage
    if usage is None:
        return None
    checkouts = unclaimed.setdefault(booking["feature_id"], list(usage.uses))
    for checkout in checkouts:
        if (
            checkout.username == job["username"]
            and _same_host(checkout.lead_host, job["lead_host"])
            and checkout.count == booking["quantity"]
        ):
            checkouts.remove(checkout)  # one checkout releases one booking
            return f"{job['username']}@{checkout.lead_host} checked out {checkout.count}"
    return None


def _same_host(server_host: str, slurm_host: str) -> bool:
    """License servers print FQDNs or short names, Slurm node names are usually short."""
    return server_host.split(".")[0].casefold() == slurm_host.split(".")[0].casefold()


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _delete(api: ApiClient, path: str) -> bool:
    """DELETE that tolerates 404: the epilog may have removed the job a moment before."""
    try:
        api.delete(path)
    except ApiError as error:
        if error.status == 404:
            return False
        raise
    return True


def reserve_for(
    server_used: int | None,
    slurm_license: SlurmLicense,
    bookings: int,
    desktop_reserved: int = 0,
    pool_total: int | None = None,
) -> LicenseTarget:
    """Tokens Slurm must keep out of its jobs' reach:
    server_used - slurm_used + desktop_reserved + bookings + excess.

    - server_used: tokens checked out on the license server by anyone (desktops, other clusters,
      and this cluster's jobs that already checked out).
    - slurm_used: `Used` of `scontrol show lic`, the tokens this cluster's running jobs hold.
      Our jobs that checked out are in both figures and cancel out. Slurm 22.05 counts licenses
      of jobs running inside a reservation twice; ours is license-only and no job runs in it,
      so `Used` is exactly what the jobs hold.
    - bookings (of every cluster on the pool): jobs that were granted tokens but have not checked
      them out yet. Ours are in slurm_used but not yet in server_used, so subtracting slurm_used
      would hand their tokens out again; adding the booking restores them. Other clusters'
      bookings are tokens about to disappear from the server.
    - desktop_reserved: the feature's `reserved` count, kept for desktops. The plain formula
      leaves it out; we add it because the API's booking rule counts it too
      (used + reserved + bookings + requested <= total). With it, what Slurm lets a job take,
      Total - slurm_used - reserve, is exactly what the prolog's booking would grant, so Slurm
      does not start jobs that the prolog must refuse and requeue.
    - excess: how far Slurm's Total (set by hand in slurm.conf) is above `pool_total`, the total
      the booking rule counts for the pool. The API grants at most
      pool_total - used - reserved - bookings, Slurm would let jobs take
      Total - slurm_used - reserve; holding the difference too makes them equal, so Slurm starts
      no job the prolog must refuse. A Total below the pool's changes nothing (Slurm is stricter).
    A booking lasts until its job's checkout shows on the server (or the job ends, or the
    booking reaches its maximum age): from the checkout to the next cycle that job counts
    twice, which only errs on the safe side.
    The result is clamped to [0, Total]; an unreadable server reserves everything (fail closed).
    """
    if server_used is None:
        return LicenseTarget(slurm_license.total, "license server unreachable (fail closed)")
    excess = max(0, slurm_license.total - pool_total) if pool_total is not None else 0
    wanted = server_used - slurm_license.used + desktop_reserved + bookings + excess
    reserve = min(max(wanted, 0), slurm_license.total)
    explanation = f"server used {server_used}, slurm used {slurm_license.used}, bookings {bookings}"
    if desktop_reserved:
        explanation += f", desktop reserved {desktop_reserved}"
    if excess:
        explanation += f", slurm total {slurm_license.total} above the server's {pool_total}"
    return LicenseTarget(reserve, explanation)


def reservation_targets(
    config: AgentConfig,
    configurations: Sequence[Mapping[str, Any]],
    polls: Sequence[PollResult],
    slurm_licenses: Mapping[str, SlurmLicense],
    without_api: Mapping[str, HeldBack] | None = None,
) -> dict[str, LicenseTarget]:
    """What the reservation must hold, per Slurm license name of every configured feature.

    `without_api`: what the last successful cycle held back, when this one has no API
    (`reserve_without_api` then sizes each license).
    """
    usage_of = _usage_by_license(config, configurations, polls)
    targets: dict[str, LicenseTarget] = {}
    totals: dict[str, tuple[int, int]] = {}  # Slurm's total and the pool's, per license read
    for name, (feature, _) in _features_by_license(config, configurations).items():
        slurm_license = slurm_licenses.get(name)
        if slurm_license is None:
            log.warning("%s is not a license of this Slurm cluster: skipped", name)
            continue
        usage = usage_of[name]
        # The pool's figures as the booking rule counts them (every cluster's fresh reports):
        # never less used nor less reserved than the API holds.
        pool = feature.get("pool") or {}
        server_used = usage.used if usage else None
        if server_used is not None and isinstance(pool.get("used"), int):
            server_used = max(server_used, pool["used"])
        pool_total = pool_total_of(usage, feature)
        if pool_total is not None:
            totals[name] = (slurm_license.total, pool_total)
        booked, reserved = feature["booked"], pool.get("reserved", feature["reserved"])
        if without_api is None:
            targets[name] = reserve_for(server_used, slurm_license, booked, reserved, pool_total)
        else:
            targets[name] = reserve_without_api(
                server_used, slurm_license, booked, reserved, without_api.get(name), pool_total
            )
    warn_about_totals(config.state_dir, totals)
    return targets


def pool_total_of(usage: FeatureUsage | None, feature: Mapping[str, Any]) -> int | None:
    """The pool's total as the booking rule counts it: what we just read, or less when the API
    holds less (its `pool.total`, the lowest fresh report of the pool's members; from an API
    without pool figures, the feature's own good report). A
    feature never reported, or last reported unreadable, has no total in the API to go by (its
    0 is no figure). None when not read."""
    if usage is None:
        return None
    pool_total = (feature.get("pool") or {}).get("total")
    if isinstance(pool_total, int):  # the lowest fresh report of the pool's members
        return min(usage.total, pool_total)
    api_total = feature.get("total")
    if feature.get("report_status") != REPORT_OK or not isinstance(api_total, int):
        return usage.total
    return min(usage.total, api_total)


TOTALS_FILE = "slurm-totals.json"


def warn_about_totals(state_dir: str, totals: Mapping[str, tuple[int, int]]) -> None:
    """Warn, once per change, about each license whose Slurm total differs from the pool's.

    cron starts a new process every cycle, so what was already said is kept in state_dir; when
    that file cannot be written the warning repeats every cycle, which is noisy but not wrong.
    """
    path = Path(state_dir) / TOTALS_FILE
    try:
        warned = json.loads(path.read_text())
        if not isinstance(warned, dict):
            warned = {}
    except (OSError, ValueError):
        warned = {}
    differing = {name: list(pair) for name, pair in totals.items() if pair[0] != pair[1]}
    for name, (slurm_total, pool_total) in sorted(totals.items()):
        if slurm_total == pool_total:
            if name in warned:
                log.info("%s: Slurm's total now equals the server's (%d)", name, slurm_total)
        elif warned.get(name) != [slurm_total, pool_total]:
            log.warning(totals_mismatch(name, slurm_total, pool_total))
    kept = {name: pair for name, pair in warned.items() if name not in totals}  # not read now
    kept.update(differing)
    if kept == warned:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(kept, sort_keys=True))
        temporary.replace(path)
    except OSError as error:
        log.debug("cannot remember the totals warned about in %s: %s", path, error.strerror)


def totals_mismatch(name: str, slurm_total: int, pool_total: int) -> str:
    """The warning for a Slurm total that differs from the license server's."""
    if slurm_total > pool_total:
        return (
            f"{name}: Slurm's total {slurm_total} is above the license server's {pool_total}: "
            f"the reservation also holds the {slurm_total - pool_total} more so that Slurm "
            f"starts no job the API must refuse; set Licenses={name}:{pool_total} in slurm.conf"
        )
    return (
        f"{name}: Slurm's total {slurm_total} is below the license server's {pool_total}: "
        f"this cluster's jobs cannot use {pool_total - slurm_total} of them; raise Licenses= "
        "in slurm.conf if they should"
    )


def apply_reservation(
    slurm: Slurm, config: AgentConfig, targets: Mapping[str, LicenseTarget]
) -> None:
    """Make the reservation hold `targets`, logging one line per license that changes.

    Nothing to reserve deletes the reservation rather than keeping one full of `:0` entries:
    `scontrol show reservation` then shows only real constraints, and creating it again costs a
    few milliseconds. Licenses no longer configured drop out of the list.
    """
    name = config.reservation_name
    current = slurm.reservation(name)
    before = current.licenses if current else {}
    wanted = {license_name: t.reserve for license_name, t in targets.items() if t.reserve > 0}
    for license_name in sorted(targets.keys() | before.keys()):
        old, target = before.get(license_name, 0), targets.get(license_name)
        new = target.reserve if target else 0
        if old != new:
            why = target.explanation if target else "no longer configured"
            log.info("%s reserved %d -> %d: %s", license_name, old, new, why)
    if not wanted:
        if current is not None:
            slurm.delete_reservation(name)
            log.info("reservation %s deleted: nothing to reserve", name)
        return
    if current is None:
        slurm.create_reservation(name, config.reservation_user, wanted)
        log.info("reservation %s created for user %s", name, config.reservation_user)
        return
    renew = current.needs_renewal(datetime.now())  # Slurm prints local time
    if renew or {k: v for k, v in before.items() if v} != wanted:
        slurm.update_reservation(name, wanted, renew=renew)
        if renew:
            log.info("reservation %s renewed for another year", name)


def report(config: AgentConfig) -> int:
    """Print what this cluster's license servers say, per configured feature; change nothing."""
    try:
        configurations = ApiClient(config).get(CONFIGURATIONS_PATH)
    except ApiError as error:
        log.error("cannot read the configurations: %s", error)
        return 1
    polls = poll_all(configurations, config.tool_path, config.tool_timeout, config.state_dir)
    try:
        slurm_licenses: Mapping[str, SlurmLicense] | None = slurm_of(config).licenses()
    except SlurmError as error:
        log.warning("cannot read Slurm's licenses: %s", error)
        slurm_licenses = None
    print("\n".join(report_lines(polls, config, slurm_licenses)))
    return 0 if all(poll.reachable for poll in polls) else 1


def print_api_totals(config: AgentConfig) -> int:
    """Print {"licenses": {slurm name: total}, "not_read": {slurm name: status}} from the API:
    the totals the license servers last reported, what slurm.conf's Licenses= should say
    (the slurm_license_config role writes them when asked). 1 when the API cannot be read."""
    try:
        configurations = ApiClient(config).get(CONFIGURATIONS_PATH)
    except ApiError as error:
        log.error("cannot read the configurations: %s", error)
        return 1
    licenses: dict[str, int] = {}
    not_read: dict[str, str] = {}
    for name, (feature, _) in sorted(_features_by_license(config, configurations).items()):
        if feature.get("report_status") == REPORT_OK:
            licenses[name] = feature["total"]
        else:
            not_read[name] = feature.get("report_status") or "never reported"
    print(json.dumps({"licenses": licenses, "not_read": not_read}))
    return 0


def report_lines(
    polls: Sequence[PollResult],
    config: AgentConfig,
    slurm_licenses: Mapping[str, SlurmLicense] | None,
) -> list[str]:
    """Per configuration: its status and the mirror that answered; per feature: status, total,
    used, checkouts and Slurm's total beside the server's; then the checkouts themselves."""
    lines: list[str] = []
    for poll in polls:
        configuration = poll.configuration
        header = f"{configuration['name']} ({configuration['type']})"
        if poll.reachable:
            tried = f" (after {'; '.join(poll.failures)})" if poll.failures else ""
            lines.append(f"{header}: ok, read from {poll.server}{tried}")
        else:
            lines.append(f"{header}: {poll.status.upper()}: {poll.reason}")
        configured = set()
        for item in tracked_features([poll]):
            configured.add(item.feature["name"].casefold())
            name = config.slurm_license_name(
                item.feature["product"]["name"], item.feature["name"], configuration["type"]
            )
            slurm = _slurm_total_text(name, slurm_licenses)
            usage = item.usage
            if usage is None:
                why = f" ({item.why_not_read})" if poll.reachable else ""
                lines.append(f"  {item.product_feature}: status {item.status}{why}, {slurm}")
                continue
            lines.append(
                f"  {item.product_feature}: status ok, total {usage.total}, used {usage.used}, "
                f"checkouts {len(usage.uses)}, {slurm}, mirror {poll.server}"
            )
            lines.extend(f"    {c.username}@{c.lead_host} {c.count}" for c in usage.uses)
        others = sorted(n for n in poll.features or {} if n.casefold() not in configured)
        if others:
            lines.append(f"  also on the server, not configured: {', '.join(others)}")
    return lines or ["no configuration for this cluster"]


def _slurm_total_text(name: str, slurm_licenses: Mapping[str, SlurmLicense] | None) -> str:
    if slurm_licenses is None:
        return "slurm total unknown (scontrol failed)"
    slurm_license = slurm_licenses.get(name)
    if slurm_license is None:
        return f"slurm total none ({name} is not a license of this cluster)"
    return f"slurm total {slurm_license.total}"
