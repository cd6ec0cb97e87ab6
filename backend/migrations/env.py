"""Alembic environment for Flask-Migrate: the app's engine and metadata, online or offline (SQL)."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

config = context.config
# Keep the loggers that already exist (the app's, the tests'): only add Alembic's own.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

migrate_extension = current_app.extensions["migrate"]
engine = migrate_extension.db.engine
target_metadata = migrate_extension.db.metadata
config.set_main_option(
    "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
)


def skip_empty_autogenerate(migration_context, revision, directives) -> None:
    """`lm-backend db migrate` with no model change writes no empty revision file."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline() -> None:
    """Print the SQL (`lm-backend db upgrade --sql`) for a DBA to apply."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    configure_args = dict(migrate_extension.configure_args)
    configure_args.setdefault("process_revision_directives", skip_empty_autogenerate)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, **configure_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
