"""SQLAlchemy models of the catalog, the source of truth of a database.

* ``Content``: one distinct file content (by hash) with its pixels' summary:
  window vectors, rescore thumbnail, size and, for an image with little
  detail, its colours (hues). Its window vectors have the ids
  ``id * WINDOW_SLOTS + window`` in the vector index (see ``database``).
* ``File``: a path that currently holds a content, with the size and mtime
  seen when it was read (what makes re-runs incremental).
* ``Failure``: a path that could not be used, and why; retried when it changes.
* ``IngestRun``: one add/sync/remove run and its counts.
* ``State``: key/value facts of the database (generation, settings).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ForeignKey, LargeBinary, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Constraint names Alembic can find again (batch mode on SQLite needs them).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Content(Base):
    """A distinct image content; its vectors are keyed by ``id`` in the vector index."""

    __tablename__ = "contents"

    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    width: Mapped[int]
    height: Mapped[int]
    flat: Mapped[bool]
    descriptor: Mapped[bytes] = mapped_column(LargeBinary)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)
    thumb_width: Mapped[int]
    thumb_height: Mapped[int]
    #: Colours (``colour.Colour.to_bytes``) of an image with little detail, else NULL.
    colour: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: Uniform bars left out when it was described (``borders.Borders``), fractions of the width
    #: (left, right) and height (top, bottom); 0 where none (and for every content stored before them).
    border_left: Mapped[float] = mapped_column(default=0.0, server_default="0")
    border_top: Mapped[float] = mapped_column(default=0.0, server_default="0")
    border_right: Mapped[float] = mapped_column(default=0.0, server_default="0")
    border_bottom: Mapped[float] = mapped_column(default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utc_now)

    files: Mapped[list[File]] = relationship(back_populates="content")


class File(Base):
    """A path holding a known content, as seen when it was last read."""

    __tablename__ = "files"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    size: Mapped[int]
    mtime_ns: Mapped[int]
    content_id: Mapped[int] = mapped_column(ForeignKey("contents.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(default=utc_now)

    content: Mapped[Content] = relationship(back_populates="files")


class Failure(Base):
    """A path that could not be used, with the reason and what it looked like."""

    __tablename__ = "failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    size: Mapped[int | None]
    mtime_ns: Mapped[int | None]
    reason: Mapped[str]
    failed_at: Mapped[datetime] = mapped_column(default=utc_now)


class IngestRun(Base):
    """One ``add``, ``sync`` or ``remove`` run and what it did."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    command: Mapped[str]
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]
    added: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    moved: Mapped[int] = mapped_column(default=0)
    removed: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)


class State(Base):
    """A key/value fact of the database (``generation``, settings)."""

    __tablename__ = "state"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str]
