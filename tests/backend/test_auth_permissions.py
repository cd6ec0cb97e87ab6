"""Permission rules as plain functions: what jobs/bookings code and views rely on."""

from __future__ import annotations

import pytest

from backend import auth
from backend.auth.permissions import Identity, UnknownPermissionError


def _identity(*permissions: str, client_id: str = "cluster-a") -> Identity:
    return Identity(client_id=client_id, permissions=frozenset(permissions))


def test_admin_has_every_permission_and_every_cluster():
    admin = _identity("license-manager:admin", client_id="ops")
    assert admin.is_admin
    assert auth.has_permission(admin, "booking", "delete")
    assert auth.may_access_cluster(admin, "cluster-b")


def test_permission_is_per_resource_and_action():
    agent = _identity("license-manager:job:create")
    assert not agent.is_admin
    assert auth.has_permission(agent, "job", "create")
    assert not auth.has_permission(agent, "job", "delete")
    assert not auth.has_permission(agent, "booking", "create")


def test_cluster_access_is_limited_to_the_own_cluster():
    agent = _identity("license-manager:job:read", client_id="cluster-a")
    assert auth.may_access_cluster(agent, "cluster-a")
    assert not auth.may_access_cluster(agent, "cluster-b")


def test_identity_merges_permissions_claim_and_scope():
    identity = Identity.from_claims(
        {
            "client_id": "cluster-a",
            "azp": "ignored-when-client_id-is-set",
            "permissions": ["license-manager:job:read", 42, None],
            "scope": "license-manager:booking:read  openid",
        }
    )
    assert identity.client_id == "cluster-a"
    assert identity.permissions == {
        "license-manager:job:read",
        "license-manager:booking:read",
        "openid",
    }


@pytest.mark.parametrize(
    "claims", [{"permissions": "license-manager:admin"}, {"scope": ["license-manager:admin"]}]
)
def test_claims_of_the_wrong_type_grant_nothing(claims):
    identity = Identity.from_claims({"azp": "cluster-a", **claims})
    assert identity.client_id == "cluster-a"
    assert not identity.is_admin
    assert identity.permissions == frozenset()


def test_validate_permission_names_deduplicates_and_names_unknown_ones():
    assert auth.validate_permission_names(
        ["license-manager:job:read", "license-manager:job:read", "license-manager:admin"]
    ) == ["license-manager:job:read", "license-manager:admin"]
    with pytest.raises(UnknownPermissionError, match="license-manager:jobs:read, x"):
        auth.validate_permission_names(["license-manager:jobs:read", "x"])


def test_guarding_a_view_with_an_unknown_permission_fails_at_import():
    with pytest.raises(UnknownPermissionError):
        auth.require("jobs", "read")
    with pytest.raises(UnknownPermissionError):
        auth.require("job", "list")
