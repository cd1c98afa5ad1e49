"""contents keep the uniform borders left out when they were described

Revision ID: 0003_borders
Revises: 0002_colour
Create Date: 2026-11-27 11:00:00.000000

Contents stored before this revision were described whole: their borders are
0, which is what they are to the rescorer. Such a database keeps describing
whole images (its ``trim_borders`` setting is absent, so false).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_borders"
down_revision: str | None = "0002_colour"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("border_left", "border_top", "border_right", "border_bottom")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("contents", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Double(), server_default="0", nullable=False))


def downgrade() -> None:
    """Revert this revision.

    Native ``DROP COLUMN``s, as in ``0002_colour``: batch mode would copy
    ``contents`` and, with foreign keys on, its drop deletes every row of ``files``.
    """
    with op.batch_alter_table("contents", schema=None, recreate="never") as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
