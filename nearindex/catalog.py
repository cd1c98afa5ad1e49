"""Reads and writes of the catalog (SQLite): files, contents, failures, state.

Every write goes through ``apply_batch``, one transaction that also bumps the
catalog *generation*; the vector index file is trusted only when it carries
the same generation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Row, Select, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from .models import Content, Failure, File, IngestRun, State, utc_now

GENERATION_KEY = "generation"
#: Any selected columns (``_rows_of``).
_Columns = tuple[Any, ...]
_BORDER_COLUMNS = (Content.border_left, Content.border_top, Content.border_right, Content.border_bottom)
_CONTENT_COLUMNS = select(
    Content.id, Content.width, Content.height, Content.flat,
    Content.descriptor, Content.thumbnail, Content.thumb_width, Content.thumb_height, Content.colour,
    *_BORDER_COLUMNS,
)  # fmt: skip


@dataclass(frozen=True)
class FileState:
    """What the catalog remembers of a path: size, mtime and content."""

    size: int
    mtime_ns: int
    content_id: int


@dataclass(frozen=True)
class NewContent:
    """A content seen for the first time, with everything the catalog keeps."""

    content_hash: bytes
    width: int
    height: int
    flat: bool
    descriptor: bytes
    thumbnail: bytes
    thumb_width: int
    thumb_height: int
    colour: bytes | None = None
    border_left: float = 0.0
    border_top: float = 0.0
    border_right: float = 0.0
    border_bottom: float = 0.0


@dataclass(frozen=True)
class FileRecord:
    """A path now holding the content with ``content_hash``."""

    path: str
    size: int
    mtime_ns: int
    content_hash: bytes


@dataclass(frozen=True)
class FailureRecord:
    """A path that could not be used."""

    path: str
    reason: str
    size: int | None = None
    mtime_ns: int | None = None


@dataclass
class Batch:
    """Changes written together in one transaction."""

    contents: list[NewContent] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    failures: list[FailureRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.contents) + len(self.files) + len(self.removals) + len(self.failures)


@dataclass(frozen=True)
class BatchResult:
    """What a committed batch changed in the set of contents."""

    generation: int
    added_ids: dict[bytes, int]
    removed_ids: list[int]


@dataclass(frozen=True)
class StoredContent:
    """A content's stored pixels summary, as read back."""

    id: int
    width: int
    height: int
    flat: bool
    descriptor: bytes
    thumbnail: bytes
    thumb_width: int
    thumb_height: int
    colour: bytes | None = None
    border_left: float = 0.0
    border_top: float = 0.0
    border_right: float = 0.0
    border_bottom: float = 0.0


class Catalog:
    """Typed access to one catalog file (through a configured Engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- state -------------------------------------------------------------
    def get_state(self, key: str) -> str | None:
        """A value from the state table, or None if never set."""
        with Session(self.engine) as session:
            return session.scalar(select(State.value).where(State.key == key))

    def set_state(self, values: dict[str, str]) -> None:
        """Set several state values in one transaction."""
        with Session(self.engine) as session, session.begin():
            for key, value in values.items():
                session.merge(State(key=key, value=value))

    def generation(self) -> int:
        """The current catalog generation (0 for a new catalog)."""
        return int(self.get_state(GENERATION_KEY) or 0)

    # -- reads ---------------------------------------------------------------
    def file_states(self) -> dict[str, FileState]:
        """Size, mtime and content id of every stored path."""
        with Session(self.engine) as session:
            rows = session.execute(select(File.path, File.size, File.mtime_ns, File.content_id))
            return {path: FileState(size, mtime, cid) for path, size, mtime, cid in rows}

    def known_hashes(self) -> set[bytes]:
        """Hashes of every stored content."""
        with Session(self.engine) as session:
            return set(session.scalars(select(Content.content_hash)))

    def paths_of(self, content_ids: Iterable[int]) -> dict[int, list[str]]:
        """The stored paths of each content, sorted."""
        found: dict[int, list[str]] = {}
        with Session(self.engine) as session:
            for chunk in _chunks(sorted(set(content_ids)), 500):
                query = select(File.content_id, File.path).where(File.content_id.in_(chunk)).order_by(File.path)
                for content_id, path in session.execute(query):
                    found.setdefault(content_id, []).append(path)
        return found

    def non_flat_content_ids(self) -> list[int]:
        """Ids of every content that is not flat, ascending."""
        with Session(self.engine) as session:
            return list(session.scalars(select(Content.id).where(Content.flat.is_(False)).order_by(Content.id)))

    def contents(self, content_ids: Iterable[int]) -> dict[int, StoredContent]:
        """Stored descriptors and thumbnails of the given contents."""
        return {row.id: StoredContent(**row._asdict()) for row in self._rows_of(_CONTENT_COLUMNS, content_ids)}

    def descriptors(self, content_ids: Iterable[int]) -> dict[int, bytes]:
        """Stored descriptors of the given contents (without their thumbnails)."""
        return {row.id: row.descriptor for row in self._rows_of(select(Content.id, Content.descriptor), content_ids)}

    def _rows_of(self, statement: Select[*_Columns], content_ids: Iterable[int]) -> Iterator[Row[*_Columns]]:
        """The rows ``statement`` selects for the given contents, a few hundred ids per query."""
        with Session(self.engine) as session:
            for chunk in _chunks(sorted(set(content_ids)), 500):
                yield from session.execute(statement.where(Content.id.in_(chunk)))

    def iter_descriptors(self, *, chunk: int = 10_000) -> Iterator[list[tuple[int, bytes]]]:
        """All non-flat contents' (id, descriptor) pairs, in chunks, by id."""
        last = 0
        with Session(self.engine) as session:
            while True:
                query = select(Content.id, Content.descriptor).where(Content.id > last, ~Content.flat)
                rows = [(cid, blob) for cid, blob in session.execute(query.order_by(Content.id).limit(chunk))]
                if not rows:
                    return
                yield rows
                last = rows[-1][0]

    def paths_under(self, prefix: str) -> list[str]:
        """Stored paths equal to ``prefix`` or inside the folder ``prefix``."""
        with Session(self.engine) as session:
            return sorted(session.scalars(select(File.path).where(_under(File.path, prefix))))

    def failed_paths_under(self, prefix: str) -> list[str]:
        """Paths with a failure record equal to ``prefix`` or inside it."""
        with Session(self.engine) as session:
            return sorted(session.scalars(select(Failure.path).where(_under(Failure.path, prefix))))

    def paths_with_hash(self, content_hash: bytes) -> list[str]:
        """Stored paths holding the content with this hash."""
        with Session(self.engine) as session:
            query = select(File.path).join(Content).where(Content.content_hash == content_hash)
            return sorted(session.scalars(query))

    def duplicate_hash_groups(self) -> list[list[str]]:
        """Paths sharing one content (exact copies), for contents with 2+ paths."""
        with Session(self.engine) as session:
            shared = select(File.content_id).group_by(File.content_id).having(func.count() > 1)
            ids = list(session.scalars(shared))
        return list(self.paths_of(ids).values())

    def counts(self) -> dict[str, int]:
        """Numbers of files, distinct contents, flat contents, contents keeping colours or borders, and failures."""
        bordered = or_(*(column > 0 for column in _BORDER_COLUMNS))
        with Session(self.engine) as session:
            return {
                "images": session.scalar(select(func.count()).select_from(File)) or 0,
                "contents": session.scalar(select(func.count()).select_from(Content)) or 0,
                "flat": session.scalar(select(func.count()).where(Content.flat)) or 0,
                "coloured": session.scalar(select(func.count()).where(Content.colour.is_not(None))) or 0,
                "bordered": session.scalar(select(func.count()).where(bordered)) or 0,
                "failed": session.scalar(select(func.count()).select_from(Failure)) or 0,
            }

    def failure_states(self) -> dict[str, FailureRecord]:
        """Every failure record by path (size and mtime as seen when it failed)."""
        return {record.path: record for record in self.failures()}

    def failures(self) -> list[FailureRecord]:
        """Every recorded failure, by path."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(Failure.path, Failure.reason, Failure.size, Failure.mtime_ns).order_by(Failure.path)
            )
            return [FailureRecord(*row) for row in rows]

    def orphan_contents(self) -> list[int]:
        """Contents no file points to (should not exist after a batch)."""
        with Session(self.engine) as session:
            query = select(Content.id).where(~select(File.id).where(File.content_id == Content.id).exists())
            return list(session.scalars(query))

    # -- writes ----------------------------------------------------------------
    def apply_batch(self, batch: Batch, *, keep_orphans: bool = False) -> BatchResult:
        """Write a batch in one transaction; bump the generation if contents changed.

        Contents are matched by hash (a known hash reuses its id), files by
        path; a path that succeeds loses its failure record; contents left
        without any file are deleted unless ``keep_orphans`` (an ingest run
        keeps them until it ends, since a later file of the same run may
        hold that content again: a move split across batches).

        Returns:
            The new generation, the ids given to new contents (by hash) and
            the ids of contents removed, which the vector index must mirror.
        """
        with Session(self.engine) as session, session.begin():
            added = _insert_contents(session, batch.contents)
            touched = _upsert_files(session, batch.files)
            touched |= _delete_files(session, batch.removals)
            _record_failures(session, batch.failures)
            removed = [] if keep_orphans else _delete_orphans(session, touched)
            changed = bool(added or removed)
            generation = _bump_generation(session) if changed else _read_generation(session)
        return BatchResult(generation=generation, added_ids=added, removed_ids=removed)

    def collect_orphans(self) -> BatchResult:
        """Delete every content no file points to (in one transaction)."""
        with Session(self.engine) as session, session.begin():
            orphans = session.scalars(
                select(Content.id).where(~select(File.id).where(File.content_id == Content.id).exists())
            )
            removed = _delete_orphans(session, set(orphans))
            generation = _bump_generation(session) if removed else _read_generation(session)
        return BatchResult(generation=generation, added_ids={}, removed_ids=removed)

    def delete_contents(self, content_ids: list[int]) -> int:
        """Delete contents and the files pointing at them (they will be re-read).

        Returns:
            The new generation, bumped in the same transaction (always, so a
            repair also invalidates any index file of the old generation).
        """
        with Session(self.engine) as session, session.begin():
            for chunk in _chunks(sorted(set(content_ids)), 500):
                session.execute(delete(File).where(File.content_id.in_(chunk)))
                session.execute(delete(Content).where(Content.id.in_(chunk)))
            return _bump_generation(session)

    def start_run(self, command: str) -> int:
        """Record the start of an ingest run; returns its id."""
        with Session(self.engine) as session, session.begin():
            run = IngestRun(command=command)
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, counts: dict[str, int]) -> None:
        """Record the end of an ingest run with its counts."""
        with Session(self.engine) as session, session.begin():
            session.execute(update(IngestRun).where(IngestRun.id == run_id).values(finished_at=utc_now(), **counts))


def _under(column: Any, prefix: str) -> Any:
    """SQL condition: ``column`` is ``prefix`` or a path inside that folder.

    A range on the text ("prefix/" <= path < "prefix0", since "0" follows "/")
    uses the unique index, unlike LIKE, and needs no escaping.
    """
    folder = prefix.rstrip("/") + "/"
    return (column == prefix) | ((column >= folder) & (column < folder[:-1] + "0"))


def _insert_contents(session: Session, contents: Sequence[NewContent]) -> dict[bytes, int]:
    """Insert the contents whose hash is new (one executemany); returns their ids by hash."""
    known = _ids_by_hash(session, [c.content_hash for c in contents])
    new = {c.content_hash: vars(c) for c in contents if c.content_hash not in known}
    if not new:
        return {}
    session.execute(insert(Content), list(new.values()))
    return _ids_by_hash(session, list(new))


def _upsert_files(session: Session, files: Sequence[FileRecord]) -> set[int]:
    """Point each path at its content; returns content ids that lost a path."""
    ids = _ids_by_hash(session, [f.content_hash for f in files])
    now = utc_now()
    final: dict[str, dict[str, Any]] = {}  # a path listed twice ends at its last content ...
    previous: set[int] = set()  # ... and every other content it held has lost it
    for f in files:
        row = {
            "path": f.path,
            "size": f.size,
            "mtime_ns": f.mtime_ns,
            "seen_at": now,
            "content_id": ids[f.content_hash],
        }
        if f.path in final and final[f.path]["content_id"] != row["content_id"]:
            previous.add(final[f.path]["content_id"])
        final[f.path] = row
    stored = _upsert_by_path(session, File, list(final.values()), File.content_id)
    previous |= {
        stored[path][1] for path, row in final.items() if path in stored and stored[path][1] != row["content_id"]
    }
    for chunk in _chunks([f.path for f in files], 500):
        session.execute(delete(Failure).where(Failure.path.in_(chunk)))
    return previous


def _delete_files(session: Session, paths: Sequence[str]) -> set[int]:
    """Forget paths (and their failures); returns content ids that lost a path."""
    previous: set[int] = set()
    for chunk in _chunks(list(paths), 500):
        previous.update(session.scalars(select(File.content_id).where(File.path.in_(chunk))))
        session.execute(delete(File).where(File.path.in_(chunk)))
        session.execute(delete(Failure).where(Failure.path.in_(chunk)))
    return previous


def _record_failures(session: Session, failures: Sequence[FailureRecord]) -> None:
    now = utc_now()
    _upsert_by_path(session, Failure, [{**vars(f), "failed_at": now} for f in failures])


def _upsert_by_path(
    session: Session, model: type[File] | type[Failure], rows: list[dict[str, Any]], *before: Any
) -> dict[str, tuple[Any, ...]]:
    """Insert rows with a new path, update the others (each as one executemany).

    Returns:
        {path: (row id, *before)} of the rows that were already stored, as they were.
    """
    stored = _rows_by(session, model.path, model.id, *before, keys=[row["path"] for row in rows])
    new = {row["path"]: row for row in rows if row["path"] not in stored}
    changed = {stored[row["path"]][0]: {**row, "id": stored[row["path"]][0]} for row in rows if row["path"] in stored}
    if new:
        session.execute(insert(model), list(new.values()))
    if changed:
        session.execute(update(model), list(changed.values()))
    return stored


def _rows_by(session: Session, key: Any, *columns: Any, keys: Sequence[Any]) -> dict[Any, tuple[Any, ...]]:
    """{key: the row's ``columns``} for the stored rows whose ``key`` column is among ``keys`` (a unique column)."""
    found: dict[Any, tuple[Any, ...]] = {}
    for chunk in _chunks(sorted(set(keys)), 500):
        found.update((row[0], tuple(row[1:])) for row in session.execute(select(key, *columns).where(key.in_(chunk))))
    return found


def _delete_orphans(session: Session, candidates: set[int]) -> list[int]:
    session.flush()
    orphans: list[int] = []
    for chunk in _chunks(sorted(candidates), 500):
        used = set(session.scalars(select(File.content_id).where(File.content_id.in_(chunk))))
        orphans.extend(cid for cid in chunk if cid not in used)
    for chunk in _chunks(orphans, 500):
        session.execute(delete(Content).where(Content.id.in_(chunk)))
    return orphans


def _read_generation(session: Session) -> int:
    return int(session.scalar(select(State.value).where(State.key == GENERATION_KEY)) or 0)


def _bump_generation(session: Session) -> int:
    generation = _read_generation(session) + 1
    session.merge(State(key=GENERATION_KEY, value=str(generation)))
    return generation


def _ids_by_hash(session: Session, hashes: Sequence[bytes]) -> dict[bytes, int]:
    return {digest: row[0] for digest, row in _rows_by(session, Content.content_hash, Content.id, keys=hashes).items()}


def _chunks(items: Sequence[int] | Sequence[str] | Sequence[bytes], size: int) -> Iterator[list]:  # type: ignore[type-arg]
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
