"""`lm-backend`: Flask's CLI over the app factory (`db upgrade`, `clients ...`, `run`)."""

from flask.cli import FlaskGroup

from backend.app import create_app


def main() -> None:
    FlaskGroup(
        name="lm-backend",
        create_app=lambda: create_app(),
        help="License Manager for Slurm backend: database migrations, OAuth clients, dev server.",
    )()
