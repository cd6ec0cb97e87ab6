"""Every REST resource is a package here holding its Blueprint, MethodViews and schemas."""

from backend.resources.health import blp as health_blp
from backend.resources.products import blp as products_blp

BLUEPRINTS = (health_blp, products_blp)
