"""Every REST resource is a package here holding its Blueprint, MethodViews and schemas."""

from backend.resources.bookings import blp as bookings_blp
from backend.resources.configurations import blp as configurations_blp
from backend.resources.features import blp as features_blp
from backend.resources.health import blp as health_blp
from backend.resources.jobs import blp as jobs_blp
from backend.resources.license_failures import blp as license_failures_blp
from backend.resources.license_servers import blp as license_servers_blp
from backend.resources.metrics import blp as metrics_blp
from backend.resources.products import blp as products_blp
from backend.resources.reconcile_leases import blp as reconcile_leases_blp
from backend.resources.usage import blp as usage_blp

BLUEPRINTS = (
    health_blp,
    configurations_blp,
    license_servers_blp,
    products_blp,
    features_blp,
    jobs_blp,
    bookings_blp,
    license_failures_blp,
    reconcile_leases_blp,
    usage_blp,
    metrics_blp,
)
