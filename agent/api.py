"""The agent's client of the License Manager API: lm_common.api set up from agent.yaml.

Usage::

    from agent.api import ApiClient, ApiError, ApiUnreachable
    api = ApiClient(config)                              # config: agent.config.AgentConfig
    configurations = api.get_all("/lm/configurations")   # every page of a list
    response = api.request("POST", "/lm/jobs", json={...})   # any status: the caller decides

Tokens (client_credentials at the endpoint discovered from `oidc_issuer`) are cached per OS user
in `{token_cache_dir}/token-{uid}.json` (0600) for the next hook or cycle. Standard library only,
like lm_common.api: the prolog imports this module on every job start with licenses.
"""

from __future__ import annotations

from agent.config import AgentConfig
from lm_common import api
from lm_common.api import ApiError, ApiResponse, ApiUnreachable, TokenCache, TokenError

__all__ = ["ApiClient", "ApiError", "ApiResponse", "ApiUnreachable", "TokenCache", "TokenError"]


class ApiClient(api.ApiClient):
    """Authenticated JSON requests to `config.api_url` as the agent's OAuth client."""

    def __init__(self, config: AgentConfig, cache: TokenCache | None = None) -> None:
        self.config = config
        self.cache = cache or TokenCache(
            config.token_cache_dir, config.oidc_issuer, config.client_id
        )
        self.credentials = api.ClientCredentials(
            config.oidc_issuer,
            config.client_id,
            config.client_secret,
            timeout=config.http_timeout,
            audience=config.oidc_audience,
            ca_file=config.ca_file,
            cache=self.cache,
        )
        super().__init__(
            config.api_url, self.credentials, timeout=config.http_timeout, ca_file=config.ca_file
        )

    @property
    def token_requests(self) -> int:
        """Tokens fetched by this client: 0 when the cache served."""
        return self.credentials.token_requests
