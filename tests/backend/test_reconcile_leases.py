"""GET, PUT, DELETE /lm/reconcile_leases/by_client_id: one agent per cluster reconciles at once."""

import threading

import pytest
from sqlalchemy import text

from backend.extensions import db

PATH = "/lm/reconcile_leases/by_client_id"
AGENT = ("license-manager:feature:read", "license-manager:feature:update")


@pytest.fixture
def agent(client, auth_headers):
    """Requests as the agent of a cluster (cluster-a unless told)."""

    def call(method, holder=None, ttl=30, cluster="cluster-a", **kwargs):
        headers = auth_headers(*AGENT, client_id=cluster)
        if method == "PUT":
            kwargs.setdefault("json", {"holder": holder, "ttl": ttl})
        if method == "DELETE":
            kwargs.setdefault("query_string", {"holder": holder})
        return client.open(PATH, method=method, headers=headers, **kwargs)

    return call


def expire_leases(app):
    with app.app_context():
        db.session.execute(text("UPDATE reconcile_leases SET expires_at = now() - interval '1 s'"))
        db.session.commit()


def test_first_agent_takes_the_lease_and_the_other_is_told_who_holds_it(agent):
    taken = agent("PUT", "ctl1:10:a")
    assert taken.status_code == 200
    assert (taken.json["holder"], taken.json["cluster_client_id"]) == ("ctl1:10:a", "cluster-a")

    refused = agent("PUT", "ctl2:20:b")
    assert refused.status_code == 409
    assert refused.json["errors"]["holder"] == "ctl1:10:a"
    assert refused.json["errors"]["expires_at"][:19] == taken.json["expires_at"][:19]
    assert "held by 'ctl1:10:a' until" in refused.json["message"]
    assert agent("GET").json["holder"] == "ctl1:10:a"


def test_the_holder_renews_and_keeps_its_acquisition_time(agent):
    first = agent("PUT", "ctl1:10:a", ttl=5).json
    renewed = agent("PUT", "ctl1:10:a", ttl=60).json
    assert renewed["acquired_at"] == first["acquired_at"]
    assert renewed["expires_at"] > first["expires_at"]


def test_an_expired_lease_goes_to_the_next_agent(app, agent):
    agent("PUT", "ctl1:10:a")
    expire_leases(app)

    assert agent("GET").status_code == 404
    taken = agent("PUT", "ctl2:20:b")
    assert taken.status_code == 200 and taken.json["holder"] == "ctl2:20:b"
    assert agent("PUT", "ctl1:10:a").status_code == 409, "the old holder must not take it back"


def test_release_frees_the_lease_and_only_its_holder_may_release_it(agent):
    agent("PUT", "ctl1:10:a")
    assert agent("DELETE", "ctl2:20:b").status_code == 409
    assert agent("DELETE", "ctl1:10:a").status_code == 204
    assert agent("DELETE", "ctl1:10:a").status_code == 204, "releasing twice is harmless"
    assert agent("PUT", "ctl2:20:b").status_code == 200


def test_a_waiting_agent_takes_over_only_a_lease_its_holder_let_expire(app, agent):
    """The backup controller's agent was refused; it asks to take over from that holder."""
    agent("PUT", "ctl1:10:a", ttl=30)

    alive = agent("PUT", json={"holder": "ctl2:20:b", "ttl": 30, "takeover_of": "ctl1:10:a"})
    assert alive.status_code == 409
    assert alive.json["errors"]["holder"] == "ctl1:10:a"
    assert 25 < alive.json["errors"]["expires_in"] <= 30

    expire_leases(app)  # ctl1 died: it stopped renewing
    taken = agent("PUT", json={"holder": "ctl2:20:b", "ttl": 30, "takeover_of": "ctl1:10:a"})
    assert taken.status_code == 200 and taken.json["holder"] == "ctl2:20:b"


def test_a_released_lease_is_not_taken_over(agent):
    """The holder finished its cycle: the waiting agent must not run a second one."""
    agent("PUT", "ctl1:10:a")
    agent("DELETE", "ctl1:10:a")

    answer = agent("PUT", json={"holder": "ctl2:20:b", "ttl": 30, "takeover_of": "ctl1:10:a"})
    assert answer.status_code == 409
    assert answer.json["errors"] == {"holder": None}


def test_clusters_have_a_lease_each(agent):
    assert agent("PUT", "ctl1:10:a", cluster="cluster-a").status_code == 200
    assert agent("PUT", "ctl9:90:z", cluster="cluster-b").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"holder": "x", "ttl": 0}, {"holder": "x", "ttl": 86400}, {"holder": "", "ttl": 30}, {}],
    ids=["ttl-zero", "ttl-a-day", "no-holder-name", "empty"],
)
def test_bad_requests_are_422(agent, body):
    answer = agent("PUT", json=body)
    assert answer.status_code == 422
    assert answer.json["errors"]


def test_taking_needs_feature_update(client, auth_headers):
    answer = client.put(
        PATH,
        json={"holder": "x", "ttl": 30},
        headers=auth_headers("license-manager:feature:read"),
    )
    assert answer.status_code == 403


def test_agents_asking_at_once_get_one_winner(app):
    """Eight agents race for a free lease through separate connections: exactly one wins."""
    barrier = threading.Barrier(8)
    results: list[int] = []

    def ask(number: int) -> None:
        from backend import auth

        with app.app_context():
            token = auth.issue_token("cluster-a", AGENT)
        client = app.test_client()
        barrier.wait()
        answer = client.put(
            PATH,
            json={"holder": f"ctl{number}", "ttl": 30},
            headers={"Authorization": f"Bearer {token}"},
        )
        results.append(answer.status_code)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        db.session.execute(text("TRUNCATE reconcile_leases"))
        db.session.commit()

    assert sorted(results) == [200] + [409] * 7
