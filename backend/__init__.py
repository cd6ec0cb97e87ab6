"""License Manager for Slurm: the REST API (gunicorn serves `backend:create_app()`)."""

from backend.app import create_app

__all__ = ["create_app"]
