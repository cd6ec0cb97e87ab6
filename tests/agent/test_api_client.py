"""The agent's API client against the real API: tokens, their cache, errors, paging."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from agent.api import ApiClient, ApiError, ApiUnreachable, TokenError
from devstack.processes import free_port
from tests.live_api import LiveApi, client_config


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def cluster_api(live_api: LiveApi, client: dict[str, str], cache_dir: Path) -> ApiClient:
    return ApiClient(client_config(live_api.url, client, cache_dir))


def cache_file(cache_dir: Path) -> Path:
    return cache_dir / f"token-{os.geteuid()}.json"


def test_a_cached_token_serves_the_next_process_without_a_token_request(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    first = cluster_api(live_api, cluster_client, cache_dir)
    first.get("/lm/jobs/by_client_id")

    second = cluster_api(live_api, cluster_client, cache_dir)
    second.get("/lm/jobs/by_client_id")

    assert (first.token_requests, second.token_requests) == (1, 0)
    assert stat.S_IMODE(cache_file(cache_dir).stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700


def test_a_token_close_to_expiry_is_replaced(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    cluster_api(live_api, cluster_client, cache_dir).get("/lm/jobs/by_client_id")
    entry = json.loads(cache_file(cache_dir).read_text())
    cache_file(cache_dir).write_text(json.dumps({**entry, "refresh_at": time.time() - 1}))

    api = cluster_api(live_api, cluster_client, cache_dir)
    api.get("/lm/jobs/by_client_id")

    assert api.token_requests == 1
    assert json.loads(cache_file(cache_dir).read_text())["refresh_at"] > time.time() + 60


def test_a_cache_file_others_could_write_is_not_trusted(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    cluster_api(live_api, cluster_client, cache_dir).get("/lm/jobs/by_client_id")
    cache_file(cache_dir).chmod(0o666)

    api = cluster_api(live_api, cluster_client, cache_dir)
    api.get("/lm/jobs/by_client_id")

    assert api.token_requests == 1
    assert stat.S_IMODE(cache_file(cache_dir).stat().st_mode) == 0o600


def test_another_clients_cached_token_is_not_used(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    cluster_api(live_api, cluster_client, cache_dir).get("/lm/jobs/by_client_id")
    entry = json.loads(cache_file(cache_dir).read_text())
    cache_file(cache_dir).write_text(json.dumps({**entry, "client_id": "cluster-b"}))

    api = cluster_api(live_api, cluster_client, cache_dir)
    api.get("/lm/jobs/by_client_id")

    assert api.token_requests == 1


def test_an_unusable_cache_directory_falls_back_to_a_private_one(
    live_api: LiveApi,
    cluster_client: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    api = cluster_api(live_api, cluster_client, not_a_directory / "cache")
    api.get("/lm/jobs/by_client_id")

    fallback = tmp_path / f"license-manager-{os.geteuid()}"
    assert api.cache.path == str(cache_file(fallback))
    assert stat.S_IMODE(fallback.stat().st_mode) == 0o700
    assert cache_file(fallback).exists()


def test_a_wrong_secret_is_a_token_error_naming_the_client(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    wrong = {**cluster_client, "client_secret": "wrong"}

    with pytest.raises(TokenError) as error:
        cluster_api(live_api, wrong, cache_dir).get("/lm/jobs/by_client_id")

    assert error.value.status == 401
    assert f"token endpoint {live_api.url}/lm/oauth/token refused client 'cluster-a'" in str(
        error.value
    )


def test_an_issuer_without_discovery_is_a_token_error(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    config = client_config(live_api.url, cluster_client, cache_dir)
    api = ApiClient(replace(config, oidc_issuer=f"{live_api.url}/not-an-issuer"))

    with pytest.raises(TokenError, match=r"no OpenID discovery document at .*: 404"):
        api.get("/lm/jobs/by_client_id")


def test_refused_connections_are_reported_as_unreachable(
    cluster_client: dict[str, str], cache_dir: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    api = ApiClient(client_config(url, cluster_client, cache_dir))

    with pytest.raises(ApiUnreachable, match="connection refused"):
        api.get("/lm/jobs/by_client_id")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A peer that accepts connections and never answers (a hung API host)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_an_api_that_never_answers_times_out(
    silent_server: str, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    api = ApiClient(client_config(silent_server, cluster_client, cache_dir, http_timeout=0.3))
    started = time.monotonic()

    with pytest.raises(ApiUnreachable, match=r"no answer from .* within 0.3s"):
        api.get("/lm/jobs/by_client_id")
    assert time.monotonic() - started < 2


def test_error_answers_carry_status_and_the_apis_message(
    live_api: LiveApi, cluster_client: dict[str, str], cache_dir: Path
) -> None:
    api = cluster_api(live_api, cluster_client, cache_dir)

    with pytest.raises(ApiError) as error:
        api.delete("/lm/jobs/slurm_job_id/424242")

    assert error.value.status == 404
    assert "DELETE /lm/jobs/slurm_job_id/424242 answered 404: No job '424242'" in str(error.value)


def test_get_all_follows_every_page(live_api: LiveApi) -> None:
    names = [f"product{number}" for number in range(5)]
    for name in names:
        live_api.admin.post("/lm/products", {"name": name})

    products = live_api.admin.get_all("/lm/products", {"sort_field": "name"}, page_size=2)

    assert [product["name"] for product in products] == names


def test_a_fallback_directory_prepared_as_a_symlink_is_refused(
    live_api: LiveApi,
    cluster_client: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / f"license-manager-{os.geteuid()}").symlink_to(tmp_path / "elsewhere")
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")

    api = cluster_api(live_api, cluster_client, not_a_directory / "cache")
    api.get("/lm/jobs/by_client_id")

    assert api.cache.path is None
    assert list((tmp_path / "elsewhere").iterdir()) == []
