"""`python -m devstack up|down|status`: the local License Manager that README's Quick start runs."""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from devstack.api import ApiError, ApiServer
from devstack.postgres import PostgresCluster, PostgresError

PROJECT_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("LM_DEV_STATE", PROJECT_DIR / ".lm-dev"))
API_PORT = int(os.environ.get("LM_API_PORT", "8000"))
PG_PORT = int(os.environ.get("LM_PG_PORT", "5433"))
ADMIN_CLIENT_FILE = STATE_DIR / "admin-client.json"


def postgres_datadir() -> Path:
    """The project-local data folder, unless the `postgres` user cannot reach it (e.g. /root)."""
    local = STATE_DIR / "pgdata"
    if os.geteuid() != 0:
        return local
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    reachable = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(STATE_DIR)], check=False
    )
    if reachable.returncode == 0:
        return local
    return Path("/var/lib/license-manager-dev") / PROJECT_DIR.name / "pgdata"


def local_postgres() -> PostgresCluster:
    return PostgresCluster(datadir=postgres_datadir(), port=PG_PORT)


def api_server(database_url: str) -> ApiServer:
    return ApiServer(state_dir=STATE_DIR / "api", database_url=database_url, port=API_PORT)


def fetch_token(api: ApiServer, credentials: dict[str, str]) -> str:
    """client_credentials at the built-in issuer, as the agent and lm-cli do."""
    basic = base64.b64encode(
        f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    ).decode()
    request = urllib.request.Request(
        f"{api.url}/lm/oauth/token",
        data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
        headers={"Authorization": f"Basic {basic}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["access_token"]


def admin_credentials(api: ApiServer) -> tuple[dict[str, str], str]:
    """Reuse the admin client made by an earlier run if it still works, else make one."""
    if ADMIN_CLIENT_FILE.exists():
        credentials = json.loads(ADMIN_CLIENT_FILE.read_text())
        try:
            return credentials, fetch_token(api, credentials)
        except OSError:
            pass  # the database was reset: the stored client is gone
    credentials = api.create_client("admin", ["license-manager:admin"])
    ADMIN_CLIENT_FILE.touch(mode=0o600)
    ADMIN_CLIENT_FILE.write_text(json.dumps(credentials))
    return credentials, fetch_token(api, credentials)


def up() -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("LM_DATABASE_URL")
    if not database_url:
        cluster = local_postgres()
        print(f"PostgreSQL: data in {cluster.datadir}, port {cluster.port}")
        cluster.ensure_running()
        database_url = cluster.ensure_database("license_manager")
    api = api_server(database_url)
    api.migrate()
    api.start()
    credentials, token = admin_credentials(api)
    print(
        f"""
License Manager API is up: {api.url}/lm/health
Swagger UI:   {api.url}/lm/docs  (Authorize -> paste the token below)
Admin client: {ADMIN_CLIENT_FILE} (client_id {credentials["client_id"]})
Token (valid 1 h):
{token}

For lm-cli and curl:
  export LM_API_URL={api.url} LM_CLIENT_ID={credentials["client_id"]}
  export LM_CLIENT_SECRET={credentials["client_secret"]}
New token:  curl -s -u "$LM_CLIENT_ID:$LM_CLIENT_SECRET" -d grant_type=client_credentials \\
              {api.url}/lm/oauth/token
Logs:       {api.log_file}
Stop:       scripts/down"""
    )


def down() -> None:
    api_server("").stop()
    if not os.environ.get("LM_DATABASE_URL"):
        local_postgres().stop()
    print("stopped the API and the local PostgreSQL started by scripts/up")


def status() -> None:
    api = api_server("")
    cluster = local_postgres()
    print(f"API ({api.url}): {'up' if api.healthy() else 'down'}")
    print(f"PostgreSQL ({cluster.datadir}): {'up' if cluster.is_running() else 'down'}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status"))
    command = parser.parse_args().command
    try:
        {"up": up, "down": down, "status": status}[command]()
    except (ApiError, PostgresError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
