"""What each real tool prints, rendered from a simulated server (same shapes as the real samples).

Kept free of heavy imports: the fake tools import this module on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Server = dict[str, Any]

# Printed for the `garbage` fault: no parser finds license data or an error line in it.
GARBAGE = "\x1b[0m@@#%%..:: 0x7f3a 0000 ~~~ ###\n??? ;;; ~~~~ 0000 ff ff ff\n%%%%\n"

_LSDYNA_EXPIRY = "12/31/2099"


def _used(server: Server, feature: str) -> int:
    return sum(c["count"] for c in server["checkouts"] if c["feature"] == feature)


def _checkouts(server: Server, feature: str) -> list[dict[str, Any]]:
    return [c for c in server["checkouts"] if c["feature"] == feature]


def lsdyna_pool_size(server: Server) -> int:
    """LS-DYNA programs of one server draw from one LICENSE GROUP: its size is the largest total."""
    return max((f["total"] for f in server["features"]), default=0)


def free_licenses(server: Server, feature: dict[str, Any]) -> int:
    """Licenses of `feature` a new checkout could still take, as the real server would count."""
    if server["type"] == "lsdyna":
        pool_used = sum(c["count"] for c in server["checkouts"])
        return min(
            feature["total"] - _used(server, feature["name"]), lsdyna_pool_size(server) - pool_used
        )
    return feature["total"] - _used(server, feature["name"])


def flexlm(server: Server) -> str:
    host, port = server["host"], server["port"]
    lines = [
        "lmutil - Copyright (c) 1989-2019 Flexera. All Rights Reserved.",
        "Flexible License Manager status on Mon 1/6/2025 09:00",
        "",
        f"License server status: {port}@{host}",
        f"    License file(s) on {host}: /opt/flexlm/licenses/license.dat:",
        "",
        f"{host}: license server UP (MASTER) v11.16.2",
        "",
        f"Vendor daemon status (on {host}):",
        "",
        "  simvendor: UP v11.16.2",
        "",
        "Feature usage info:",
        "",
    ]
    for handle, feature in enumerate(server["features"], start=100):
        name = feature["name"]
        lines += [
            f"Users of {name}:  (Total of {feature['total']} licenses issued;"
            f"  Total of {_used(server, name)} licenses in use)",
            "",
        ]
        checkouts = _checkouts(server, name)
        if checkouts:
            lines += [
                f'  "{name}" v1.0, vendor: simvendor, expiry: permanent(no expiration date)',
                "  floating license",
                "",
            ]
        for offset, checkout in enumerate(checkouts):
            count = checkout["count"]
            suffix = f", {count} licenses" if count > 1 else ""
            lines.append(
                f"    {checkout['user']} {checkout['host']} /dev/tty (v1.0) "
                f"({host}/{port} {handle + offset}), start Mon 1/6 8:00{suffix}"
            )
        if checkouts:
            lines.append("")
    return "\n".join(lines) + "\n"


def rlm(server: Server) -> str:
    host, port = server["host"], server["port"]
    lines = [
        "rlmutil v12.2",
        "Copyright (C) 2006-2017, Reprise Software, Inc. All rights reserved.",
        "",
        "",
        f"    rlm status on {host} (port {port}), up 1d 00:00:00",
        "    rlm software version v12.2 (build:2)",
        "",
        "    --------- ISV servers ----------",
        "    Name           Port Running Restarts",
        f"    simisv          {port + 1}   Yes      0",
        "",
        "    ------------------------",
        "",
        f"    simisv license pool status on {host} (port {port + 1})",
        "",
    ]
    for feature in server["features"]:
        lines += [
            f"    {feature['name']} v1.0",
            f"        count: {feature['total']}, # reservations: 0, "
            f"inuse: {_used(server, feature['name'])}, exp: permanent",
            "        obsolete: 0, min_remove: 120, total checkouts: 0",
        ]
    lines += ["", "", "    ------------------------", ""]
    lines += [f"    simisv license usage status on {host} (port {port + 1})", ""]
    for handle, checkout in enumerate(server["checkouts"], start=0x100):
        lines.append(
            f"    {checkout['feature']} v1.0: {checkout['user']}@{checkout['host']} "
            f"{checkout['count']}/0 at 01/06 08:00  (handle: {handle:x})"
        )
    return "\n".join(lines) + "\n"


def lsdyna(server: Server) -> str:
    lines = [
        f"Using user specified server {server['port']}@{server['host']}",
        "",
        "LICENSE INFORMATION",
        "",
        "PROGRAM          EXPIRATION CPUS  USED   FREE    MAX | QUEUE",
        "---------------- ----------      ----- ------ ------ | -----",
    ]
    pool = lsdyna_pool_size(server)
    pool_used = sum(c["count"] for c in server["checkouts"])
    pool_free = max(0, pool - pool_used)
    for feature in server["features"]:
        checkouts = _checkouts(server, feature["name"])
        used_column = "-" if checkouts else "0"
        lines.append(
            f"{feature['name']:<16} {_LSDYNA_EXPIRY} {used_column:>10} {pool_free:>6} "
            f"{feature['total']:>6} | {0:>5}"
        )
        for pid, checkout in enumerate(checkouts, start=10001):
            address = f"{pid}@{checkout['host']}"
            lines.append(f" {checkout['user']:<8} {address:>18}  {checkout['count']}")
    lines.append(f"{'LICENSE GROUP':>32} {pool_used:>5} {pool_free:>6} {pool:>6} | {0:>5}")
    return "\n".join(lines) + "\n"


_LMX_RULE = "-" * 40
_LMX_BANNER = [
    "LM-X End-user Utility v3.32",
    "Copyright (C) 2002-2010 X-Formation. All rights reserved.",
    "",
    "++++++++++++++++++++++++++++++++++++++++",
]


def lmx(server: Server) -> str:
    lines = [*_LMX_BANNER, f"LM-X License Server on {server['port']}@{server['host']}:", ""]
    lines.append("Server version: v5.1 Uptime: 1 day(s) 0 hour(s) 0 min(s) 0 sec(s)")
    for feature in server["features"]:
        name, checkouts = feature["name"], _checkouts(server, feature["name"])
        colon = ":" if checkouts else ""
        lines += [
            _LMX_RULE,
            f"Feature: {name} Version: 1.0 Vendor: SIMVENDOR",
            "Start date: 2024-01-01 Expire date: 2099-12-31",
            "Key type: EXCLUSIVE License sharing: CUSTOM VIRTUAL",
            "",
            f"{_used(server, name)} of {feature['total']} license(s) used{colon}",
        ]
        for checkout in checkouts:
            who = f"{checkout['user']}@{checkout['host']}"
            lines += [
                "",
                f"{checkout['count']} license(s) used by {who} [127.0.0.1]",
                "Login time: 2025-01-06 08:00   Checkout time: 2025-01-06 08:00",
                f"Shared on custom string: {checkout['user']}:{checkout['host']}",
            ]
    return "\n".join(lines) + "\n"


_OLICENSE_BANNER = [
    "olixtool 4.8.0 - OLicense XML Status Application",
    "Copyright (C) 2007-2013 Optimum GmbH, Karlsruhe, Germany",
    "",
]


def olicense(server: Server) -> str:
    lines = [*_OLICENSE_BANNER, f"Server: <{server['host']}:{server['port']}:0> (Proxy: <>)", ""]
    lines += ["List of requested licenses:", ""]
    for number, feature in enumerate(server["features"], start=1):
        name, checkouts = feature["name"], _checkouts(server, feature["name"])
        lines += [
            "==============================================",
            "Application:\tsimulated",
            "VersionRange:\t0-20991",
            "Licenser:\tLicense Manager simulator",
            "Licensee:\tSimulated site",
            f"License-ID:\tsim-{number:08x}@sim{number:06d}",
            "Modules:",
            "  Name; LicenseType; FloatCount; Expiration",
            "  --------------------------------------------",
            f"  {name};         \tFreeFloating;\t{feature['total']};\t2099-12-31 23:59:59;",
        ]
        if checkouts:
            lines.append(f"    {_used(server, name)} FloatsLockedBy:")
            lines += [f"      {c['user']}@{c['host']} #{c['count']}" for c in checkouts]
        lines += ["", ""]
    return "\n".join(lines) + "\n"


DSLS_BANNER = "License Administration Tool Version 6.425.4 Built on May 2, 2023, 6:45:36 PM."
_DSLS_COLUMNS = (
    "Editor,EditorId,Feature,Model,Commercial Type,Max Release Number,Max Release Date,"
    "Pricing Structure,Max Casual Duration,Expiration Date,Customer ID,Count,Inuse,Tokens,"
    "Casual Usage (mn),Host,User,Internal ID,Active Process,Client Code Version,Session ID,"
    "Granted Since,Last Used At,Granted At,Queue Position,"
)


def dsls_connected(server: Server) -> str:
    """What `connect HOST PORT` prints once connected (after the `admin >` prompt)."""
    return (
        "\tSoftware version: 6.425.4\n"
        "    Build date: May 2, 2023, 6:45:36 PM\n"
        "    Standalone mode\n"
        "    Ready: yes\n"
        f"    Server name: {server['host']}   Server id: SIM-{server['port']}\n"
    )


def dsls_usage(server: Server) -> str:
    """What `getLicenseUsage -csv` prints: one row per idle feature, else one per checkout."""
    lines = [_DSLS_COLUMNS]
    for feature in server["features"]:
        name, total = feature["name"], feature["total"]
        entry = (
            f"Dassault Systemes,5E756A80,{name},Token,STD,8,2099-12-31 00:59:00,YLC,0,"
            f"2099-12-31 00:59:00,10001723,{total},{_used(server, name)},"
        )
        checkouts = _checkouts(server, name)
        if not checkouts:
            lines.append(entry)
        for session, checkout in enumerate(checkouts, start=0x2DBE16):
            lines.append(
                f"{entry}{checkout['count']},,{checkout['host']} (263.0)/127.0.0.1,"
                f"{checkout['user']},{name},/opt/sim/solver ( {session}),6.424,{session:07X},"
                "2025-01-06 08:00:00,2025-01-06 08:00:00,2025-01-06 08:00:00,"
            )
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Server], str]] = {
    "flexlm": flexlm,
    "rlm": rlm,
    "lsdyna": lsdyna,
    "lmx": lmx,
    "olicense": olicense,
    "dsls": dsls_usage,
}


def usage_output(server: Server) -> str:
    """The usage listing a `server` answers with: its features, or nonsense under `garbage`."""
    return GARBAGE if server.get("fault") == "garbage" else RENDERERS[server["type"]](server)


# The tools exit non-zero when they cannot reach a server (the agent also reads the text).
DOWN_EXIT_CODE = 1


def server_down(server_type: str, host: str, port: int) -> str:
    """What the real tool prints when nothing answers at host:port (the *_server_down samples)."""
    if server_type == "flexlm":
        return (
            "lmutil - Copyright (c) 1989-2019 Flexera. All Rights Reserved.\n"
            "Flexible License Manager status on Mon 1/6/2025 09:00\n\n"
            "Error getting status: Cannot connect to license server"
            ' (-15,570:111 "Connection refused")\n'
        )
    if server_type == "rlm":
        return (
            "rlmutil v12.2\nCopyright (C) 2006-2017, Reprise Software, Inc. All rights reserved.\n"
            f'\n\nError connecting to "rlm" server\n\nConnection attempted to host: "{host}" '
            f"on port {port}\n\nNo error\n"
        )
    if server_type == "lsdyna":
        return (
            f"Using user specified server {port}@{host}\n*** ERROR failed to open server {host}\n"
        )
    if server_type == "lmx":
        lines = [
            *_LMX_BANNER,
            "LM-X license server(s):",
            _LMX_RULE,
        ]
        return "\n".join([*lines, "There are no license server(s) available."]) + "\n"
    if server_type == "olicense":
        lines = [*_OLICENSE_BANNER, f"Server: <{host}:{port}:0> (Proxy: <>)", ""]
        return "\n".join([*lines, "OlComm 454 Request cannot connect to target"]) + "\n"
    return f"{DSLS_BANNER}\n{dsls_cannot_connect(host, port)}"


def dsls_cannot_connect(host: str, port: int) -> str:
    return f"Cannot connect to server {host} on port {port}\n"
