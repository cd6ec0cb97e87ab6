"""The reconcile lease: one agent per cluster reconciles at a time, across controller hosts.

Sites run the agent from cron on the primary and on the backup slurmctld. The local lock file
only stops overlapping runs on one host; the lease, held through the API (PostgreSQL, see
backend/lease.py), stops the two hosts from sizing the same reservation at once:

- a cycle starts by taking the lease for lease_ttl(stat_interval) seconds (half an interval);
- while the cycle runs a thread renews it every third of its lifetime, so a slow cycle keeps it;
- the cycle releases it when it ends;
- an agent refused the lease waits while the holder works: when the holder releases it (its
  cycle is done) the waiting agent stops (one cycle per interval, one tool run per server); when
  the holder lets it expire (killed, host down) the waiting agent takes it over at once. So a
  dead holder delays the cluster by at most half an interval, and never more than one;
- a renewal refused (another agent took over: this one stalled longer than the lifetime) marks
  the lease lost: the cycle stops before touching the reservation.

When the API cannot be reached the lease cannot be taken either: the cycle goes on under the
local lock (the degraded mode of agent.reconcile needs no API). An API without the lease
endpoint (an older version) is treated the same way, with a warning.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agent.api import ApiClient, ApiError, ApiResponse, ApiUnreachable, TokenError
from agent.config import AgentConfig

log = logging.getLogger("agent.lease")

LEASE_PATH = "/lm/reconcile_leases/by_client_id"


def lease_ttl(stat_interval: float) -> float:
    """Half an interval (at least 2 s): a dead holder delays the other host by at most that."""
    return max(2.0, stat_interval / 2)


def new_holder() -> str:
    """Who we are in the lease: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class ReconcileLease:
    """The lease of one agent process (`holder`), renewed in the background while held."""

    def __init__(self, config: AgentConfig, holder: str | None = None) -> None:
        self.config = config
        self.holder = holder or new_holder()
        self.ttl = lease_ttl(config.stat_interval)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        """Another agent took the lease while we held it: do not touch the reservation."""
        return self._lost.is_set()

    def take(self, api: ApiClient) -> bool | None:
        """True when held (renewed in the background from now on), False when another agent
        held it and released it (its cycle done) or still holds it after an interval, None when
        there is no lease to be had (API unreachable or without leases)."""
        try:
            response = api.request("PUT", LEASE_PATH, json=self._request())
            if response.status == 409:
                response = self._wait_for_takeover(api, response)
        except (ApiUnreachable, TokenError) as error:
            log.warning("reconcile lease not taken (%s): going on under the local lock", error)
            return None
        if response.status == 200:
            log.debug("reconcile lease taken by %s for %g s", self.holder, self.ttl)
            self._start_renewing()
            return True
        if response.status == 409:
            log.debug("another agent reconciled this cluster: %s; nothing to do", response.message)
            return False
        if response.status == 404:
            log.warning(
                "the API has no reconcile lease (%s); going on under the local lock: with a "
                "backup controller, upgrade the API",
                response.message,
            )
            return None
        raise ApiError(f"reconcile lease: {response.message}", response.status)

    def _wait_for_takeover(self, api: ApiClient, refused: ApiResponse) -> ApiResponse:
        """Wait while the holder works; take over its lease if it lets it expire (it died).

        Returns the take-over's answer: 200 taken, or 409 (released, or still held after an
        interval: the holder is alive and its next cycle will come).
        """
        deadline = time.monotonic() + self.config.stat_interval
        response = refused
        holder = _errors(refused).get("holder")
        log.debug("reconcile lease held by %s: waiting for it to be released or to expire", holder)
        while holder is not None and time.monotonic() < deadline:
            expires_in = _errors(response).get("expires_in")
            wait = expires_in if isinstance(expires_in, int | float) else self.ttl / 3
            time.sleep(min(max(wait, 0.0), self.ttl) + 0.05)
            response = api.request(
                "PUT", LEASE_PATH, json={**self._request(), "takeover_of": holder}
            )
            if response.status != 409 or _errors(response).get("holder") != holder:
                break
        if response.status == 200:
            log.warning(
                "reconcile lease taken over from %s, which let it expire (agent or host down?)",
                holder,
            )
        return response

    def release(self, api: ApiClient) -> None:
        """Stop renewing and give the lease up (it expires anyway if this fails)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self.lost:
            return
        try:
            response = api.request("DELETE", LEASE_PATH, params={"holder": self.holder})
        except ApiError as error:
            log.debug("reconcile lease not released (%s): it expires by itself", error)
            return
        if response.ok:
            log.debug("reconcile lease released by %s", self.holder)
        else:
            log.debug("reconcile lease not released: %s", response.message)

    def _request(self) -> dict[str, object]:
        return {"holder": self.holder, "ttl": self.ttl}

    def _start_renewing(self) -> None:
        self._renewer = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        api = ApiClient(self.config)  # ApiClient is not thread-safe: one of our own
        while not self._stop.wait(self.ttl / 3):
            try:
                response = api.request("PUT", LEASE_PATH, json=self._request())
            except ApiError as error:
                log.warning("reconcile lease not renewed (%s); retrying", error)
                continue
            if response.status == 409:
                self._lost.set()
                log.error("reconcile lease lost: %s; this cycle stops", response.message)
                return
            if not response.ok:
                log.warning("reconcile lease not renewed: %s; retrying", response.message)


@contextmanager
def reconcile_lease(config: AgentConfig, api: ApiClient) -> Iterator[ReconcileLease | None]:
    """The lease held for the block: the lease (check `.lost` before writing), None when there
    is none to be had (go on under the local lock); raises LeaseHeld when another agent has it."""
    lease = ReconcileLease(config)
    taken = lease.take(api)
    if taken is False:
        raise LeaseHeld()
    try:
        yield lease if taken else None
    finally:
        if taken:
            lease.release(api)


def _errors(response: ApiResponse) -> dict[str, Any]:
    body = response.body
    errors = body.get("errors") if isinstance(body, dict) else None
    return errors if isinstance(errors, dict) else {}


class LeaseHeld(Exception):
    """Another agent of the cluster holds the reconcile lease (already logged)."""
