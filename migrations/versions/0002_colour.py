"""contents keep the colours (hues) of an image with little detail

Revision ID: 0002_colour
Revises: 0001_initial
Create Date: 2026-11-27 08:20:00.000000

Contents stored before this revision have no colour (NULL) until their files
are described again; the colour test (``nearindex.colour.colours_differ``) is
skipped for them, as it is for any image with detail.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_colour"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("colour", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    """Revert this revision.

    A native ``DROP COLUMN`` (SQLite 3.35 or newer): batch mode would copy
    ``contents`` and drop the old table, and with foreign keys on that drop
    deletes every row of ``files``.
    """
    with op.batch_alter_table("contents", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("colour")
