"""The Ansible roles, the docs and the schema's last migration say what lm_common.facts says.

The Python code imports these facts; the files checked here cannot, so a change to a fact that
forgets one of them fails here, naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import ToolPaths, settings_of
from lm_common.facts import (
    ACTIONS,
    AGENT_PERMISSIONS,
    DEFAULT_LICENSE_NAME_TEMPLATE,
    PERMISSION_PREFIX,
    RESOURCES,
    SERVER_TYPES,
    TOOL_BY_SERVER_TYPE,
)

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"
SLURM_COMMANDS = ("scontrol", "squeue")


def role_file(role: str, name: str) -> Any:
    return yaml.safe_load((ROLES / role / name).read_text())


def role_options(role: str) -> dict[str, Any]:
    return role_file(role, "meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def doc(name: str) -> str:
    return " ".join((ROOT / name).read_text().split())


def words_in_backticks_after(text: str, lead: str) -> list[str]:
    """The words of the first `...` span after `lead` (docs wrap long lists over lines)."""
    found = re.search(re.escape(lead) + r"[^`]*`([^`]+)`", text)
    assert found, f"no `...` list after {lead!r}"
    return found.group(1).split()


UNPREFIXED_AGENT_PERMISSIONS = [
    permission.removeprefix(f"{PERMISSION_PREFIX}:") for permission in AGENT_PERMISSIONS
]


def test_backend_role_gives_agents_the_agent_permissions() -> None:
    defaults = role_file("license_manager_backend", "defaults/main.yml")
    assert defaults["license_manager_backend_agent_permissions"] == list(AGENT_PERMISSIONS)


@pytest.mark.parametrize(
    ("document", "lead"),
    [
        ("docs/architecture.md", "A cluster agent's client needs:"),
        ("docs/agent.md", "The client needs these permissions (all prefixed `license-manager:`):"),
    ],
)
def test_docs_list_the_agent_permissions(document: str, lead: str) -> None:
    assert words_in_backticks_after(doc(document), lead) == UNPREFIXED_AGENT_PERMISSIONS


def test_architecture_doc_names_every_resource_and_action() -> None:
    text = doc("docs/architecture.md")
    assert f"resource in {', '.join(RESOURCES)};" in text
    assert f"action in {', '.join(ACTIONS)}." in text


def test_slurm_role_offers_exactly_the_server_types() -> None:
    license_options = role_options("slurm_license_config")["slurm_license_config_licenses"]
    assert license_options["options"]["type"]["choices"] == list(SERVER_TYPES)


@pytest.mark.parametrize(
    ("document", "lead"),
    [
        ("docs/cli.md", "`--license-server-type` ("),
        ("docs/agent.md", "({type}: "),
        ("roles/slurm_license_config/defaults/main.yml", "type ("),
    ],
)
def test_docs_list_the_server_types(document: str, lead: str) -> None:
    text = doc(document)
    assert f"{lead}{', '.join(SERVER_TYPES)})" in text.replace("# ", ""), document


def test_agent_settings_role_and_docs_know_a_path_for_every_tool() -> None:
    expected = [*TOOL_BY_SERVER_TYPE.values(), *SLURM_COMMANDS]
    assert list(settings_of(ToolPaths)) == expected, "agent/config.py ToolPaths"
    defaults = role_file("license_manager_agent", "defaults/main.yml")
    assert list(defaults["license_manager_agent_tools"]) == expected
    tools = role_options("license_manager_agent")["license_manager_agent_tools"]["options"]
    assert list(tools) == expected
    documented = re.findall(r"^  (\w+): /", (ROOT / "docs/agent.md").read_text(), re.MULTILINE)
    assert documented == expected


def test_license_name_template_default_is_the_shared_one() -> None:
    agent_defaults = role_file("license_manager_agent", "defaults/main.yml")
    assert agent_defaults["license_manager_agent_license_name_template"] == (
        DEFAULT_LICENSE_NAME_TEMPLATE
    )
    slurm_defaults = role_file("slurm_license_config", "defaults/main.yml")
    fallback = f"default('{DEFAULT_LICENSE_NAME_TEMPLATE}')"
    assert fallback in slurm_defaults["slurm_license_config_name_template"]
    for document in ("docs/agent.md", "docs/architecture.md", "docs/deploy.md"):
        assert f"`{DEFAULT_LICENSE_NAME_TEMPLATE}`" in doc(document) or (
            f'"{DEFAULT_LICENSE_NAME_TEMPLATE}"' in doc(document)
        ), document


def test_schema_accepts_exactly_the_server_types() -> None:
    """The newest migration that sets the configurations' type check lists SERVER_TYPES."""
    migrations = sorted((ROOT / "backend/migrations/versions").glob("*.py"))
    newest = [path for path in migrations if "known_type" in path.read_text()][-1]
    listed = re.search(r"type IN \(([^)]*)\)", newest.read_text())
    assert listed, newest.name
    assert re.findall(r"'(\w+)'", listed.group(1)) == list(SERVER_TYPES), newest.name
