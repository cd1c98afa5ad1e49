"""Alembic environment for the nearindex catalog.

nearindex runs migrations itself (``nearindex.migrate``) and hands over an
open connection inside one transaction; developers generating a revision use
``alembic -c alembic.ini revision --autogenerate`` against a scratch file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from nearindex.engine import create_catalog_engine
from nearindex.models import Base


def run_on(connection: Connection) -> None:
    """Run the pending migrations on an open connection."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Use the caller's connection, or open the file named in alembic.ini."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    from pathlib import Path

    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///scratch.sqlite3"
    engine = create_catalog_engine(Path(url.removeprefix("sqlite:///")))
    with engine.connect() as owned:
        run_on(owned)
        owned.commit()


main()
