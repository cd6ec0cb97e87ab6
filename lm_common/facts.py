"""Facts every side shares, defined once: server types, their tools, permissions, license names.

The backend validates configurations and tokens with them, the agent polls servers and names
Slurm licenses with them, lm-cli offers them as choices, and tests check the Ansible roles and
the docs against them (tests/test_shared_facts.py). Standard library only, imports nothing.
"""

from __future__ import annotations

# License-server type -> the command-line tool that reads such a server. The tool's name is
# also its key in the agent's `tools:` settings.
TOOL_BY_SERVER_TYPE: dict[str, str] = {
    "flexlm": "lmutil",
    "rlm": "rlmutil",
    "lsdyna": "lstc_qrun",
    "lmx": "lmxendutil",
    "olicense": "olixtool",
    "dsls": "DSLicSrv",
}
SERVER_TYPES: tuple[str, ...] = tuple(TOOL_BY_SERVER_TYPE)

# What the agent's report says of a feature's license server: read (ok), unreachable (the tool
# failed, timed out or printed an error; or the server does not list the feature), or
# unparsable (the tool ran but printed what the agent's parser does not understand).
REPORT_OK, REPORT_UNREACHABLE, REPORT_UNPARSABLE = "ok", "unreachable", "unparsable"
REPORT_STATUSES: tuple[str, ...] = (REPORT_OK, REPORT_UNREACHABLE, REPORT_UNPARSABLE)

# Why the API refused to book a license (a refusal's `reason`, a metric label): the pool has too
# few left, or its server was never reported, not read at the last report, or not lately.
REFUSAL_REASONS: tuple[str, ...] = (
    "insufficient",
    "never_reported",
    "unreachable",
    "unparsable",
    "stale",
    "vanished",
)

# Permissions are `license-manager:admin` (everything) or `license-manager:<resource>:<action>`.
PERMISSION_PREFIX = "license-manager"
ADMIN_PERMISSION = f"{PERMISSION_PREFIX}:admin"
RESOURCES: tuple[str, ...] = (
    "configuration",
    "license-server",
    "product",
    "feature",
    "job",
    "booking",
    "license-failure",
    "metrics",  # only metrics:read means something: scraping /lm/metrics
)
ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete")
ALL_PERMISSIONS: tuple[str, ...] = (
    ADMIN_PERMISSION,
    *(f"{PERMISSION_PREFIX}:{resource}:{action}" for resource in RESOURCES for action in ACTIONS),
)


class UnknownPermissionError(ValueError):
    """A permission name is not one the API understands (typo, wrong prefix)."""


def permission_name(resource: str, action: str) -> str:
    """The permission string guarding `action` on `resource`, e.g. license-manager:job:create."""
    if resource not in RESOURCES or action not in ACTIONS:
        raise UnknownPermissionError(f"no permission for {action!r} on {resource!r}")
    return f"{PERMISSION_PREFIX}:{resource}:{action}"


# The OAuth client id people log in with through lm-cli (LM_CLI_CLIENT_ID overrides it on both
# sides): the API treats tokens issued to it as a person's, never as a cluster's.
DEFAULT_CLI_CLIENT_ID = "lm-cli"

# What a cluster's agent needs, and no more: read its own pools (configurations come with their
# servers, features and products embedded), report usage (feature:update, which reaches only
# its own cluster's features), post and delete its jobs (prolog, epilog, reconcile; bookings come
# embedded in jobs), release stale bookings and record license failures (epilog). An agent
# cannot change pools, products or other clusters' rows.
AGENT_PERMISSIONS: tuple[str, ...] = tuple(
    f"{PERMISSION_PREFIX}:{resource}:{action}"
    for resource, actions in (
        ("configuration", ("read",)),
        ("feature", ("update",)),
        ("job", ("read", "create", "delete")),
        ("booking", ("delete",)),
        ("license-failure", ("read", "create")),
    )
    for action in actions
)

# How one product.feature of a server type is named as a Slurm license (`-L NAME:COUNT`).
DEFAULT_LICENSE_NAME_TEMPLATE = "{product}.{feature}@{type}"


def slurm_license_name(
    product: str, feature: str, server_type: str, template: str = DEFAULT_LICENSE_NAME_TEMPLATE
) -> str:
    """The Slurm license that stands for one product.feature of a server type."""
    return template.format(product=product, feature=feature, type=server_type)
