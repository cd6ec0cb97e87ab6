"""Who is calling and what they may do: identities built from token claims, permission checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lm_common.facts import (
    ACTIONS,
    ADMIN_PERMISSION,
    ALL_PERMISSIONS,
    PERMISSION_PREFIX,
    RESOURCES,
    UnknownPermissionError,
    permission_name,
)


def validate_permission_names(names: Iterable[str]) -> list[str]:
    """Return the names in order without duplicates; raise naming every unknown one."""
    unique = list(dict.fromkeys(names))
    unknown = [name for name in unique if name not in ALL_PERMISSIONS]
    if unknown:
        raise UnknownPermissionError(
            f"unknown permission(s): {', '.join(unknown)}; valid: {ADMIN_PERMISSION} or "
            f"{PERMISSION_PREFIX}:<resource>:<action> with resource in {', '.join(RESOURCES)} "
            f"and action in {', '.join(ACTIONS)}"
        )
    return unique


# Claim of the built-in issuer's tokens naming the stored client (row id) they were issued to.
CLIENT_REF_CLAIM = "lm_client_ref"


@dataclass(frozen=True)
class Identity:
    """The caller of one request: its cluster (OAuth client id) and what it may do.

    A person (a token of a login client such as lm-cli) has `person` set and no cluster
    (`client_id` empty): they act on clusters' jobs only as an admin, naming the cluster.
    `client_ref` is the stored client of a token from the built-in token endpoint (None for
    other tokens): such a token is refused once that client is deleted.
    """

    client_id: str
    permissions: frozenset[str]
    person: str = ""
    client_ref: int | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_PERMISSION in self.permissions

    def __str__(self) -> str:
        return f"person {self.person!r}" if self.person else f"client {self.client_id!r}"

    @classmethod
    def from_claims(
        cls, claims: Mapping[str, object], login_clients: frozenset[str] = frozenset()
    ) -> Identity:
        """Cluster from `client_id` (fallback `azp`); permissions from `permissions` and `scope`.

        Tokens issued to one of `login_clients` are people's: `sub` names the person.
        """
        client_id = str(claims.get("client_id") or claims.get("azp") or "")
        permissions: set[str] = set()
        listed = claims.get("permissions")
        if isinstance(listed, list):
            permissions.update(item for item in listed if isinstance(item, str))
        scope = claims.get("scope")
        if isinstance(scope, str):
            permissions.update(scope.split())
        client_ref = claims.get(CLIENT_REF_CLAIM)
        ref = client_ref if type(client_ref) is int else None
        if client_id and client_id in login_clients:
            person = str(claims.get("sub") or "")
            return cls(
                client_id="", permissions=frozenset(permissions), person=person, client_ref=ref
            )
        return cls(client_id=client_id, permissions=frozenset(permissions), client_ref=ref)


def has_permission(identity: Identity, resource: str, action: str) -> bool:
    """True when the identity is admin or holds license-manager:<resource>:<action>."""
    return identity.is_admin or permission_name(resource, action) in identity.permissions


def may_access_cluster(identity: Identity, cluster_client_id: str) -> bool:
    """Configurations (with their license servers and features), jobs and bookings belong to a
    cluster: only its client or an admin may change them (and a cluster sees only its own)."""
    return identity.is_admin or identity.client_id == cluster_client_id


def may_read_cluster(identity: Identity, cluster_client_id: str) -> bool:
    """Who sees a cluster's configurations, license servers and features: its own client, an
    admin, and people (who are no cluster: read permissions let them see every pool)."""
    return bool(identity.person) or may_access_cluster(identity, cluster_client_id)


def visible_cluster(identity: Identity) -> str | None:
    """The one cluster whose configurations a list shows the identity, or None for every
    cluster (admins, people)."""
    return None if identity.is_admin or identity.person else identity.client_id
