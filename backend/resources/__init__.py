"""Every REST resource is a package here holding its Blueprint, MethodViews and schemas."""

from backend.resources.health import blp as health_blp

BLUEPRINTS = (health_blp,)
