"""Bearer-token authentication and permissions (placeholder until the auth module lands)."""

from flask import Flask
from flask_smorest import Api


def init_app(app: Flask, api: Api) -> None:
    """Register the issuer endpoints, the security scheme and the `clients` commands."""
