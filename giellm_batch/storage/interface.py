"""What the job asks of a store for its own files (lock, intents, staging, reports, table logs).

The method set is what the callers need and no more. Paths are strings in the caller's spelling
(a local path, `file:/...`, `hdfs://...`, `s3a://...`); a path a store hands back (`FileStatus.path`)
can be passed to the same store again. Errors: a missing file is `FileNotFoundError` wherever the
caller may meet it as a normal case (`read_bytes`, `status`); every other failure raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FileStatus:
    """One file or folder as a store lists it."""

    path: str  # the full path, as the store spells it: pass it back to the same store
    name: str  # the last part of `path`
    size: int  # bytes; 0 for a folder
    modified: float  # seconds since the epoch
    is_dir: bool


class Storage(Protocol):
    """Small files and folders beside the Delta tables, on one kind of store."""

    def read_bytes(self, path: str) -> bytes:
        """The whole file; `FileNotFoundError` when there is none."""
        ...

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace the whole file, creating its folder. Atomic where the store allows:
        a reader sees the old content or the new, never a part (POSIX: write beside, then rename;
        object stores: a single PUT; HDFS: not atomic)."""
        ...

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create the file with `data` only if nothing is at `path`: True if this call created it,
        False if something was there already (any other failure raises). The warehouse lock rests on
        this: of two callers racing, exactly one gets True where the store's create-if-absent is
        atomic (POSIX link(2), HDFS; on S3 it needs s3a conditional writes)."""
        ...

    def exists(self, path: str) -> bool:
        """Is there a file or a folder at `path`?"""
        ...

    def status(self, path: str) -> FileStatus:
        """Size and modification time of what is at `path`; `FileNotFoundError` when nothing is."""
        ...

    def list_folder(self, folder: str) -> list[FileStatus]:
        """The entries directly in `folder`, in no particular order; [] when nothing is there (object
        stores cannot tell an absent folder from an empty one). A file lists as itself."""
        ...

    def delete(self, path: str) -> bool:
        """Remove the file, or the folder with everything under it; False when nothing was there."""
        ...

    def rename(self, source: str, target: str) -> None:
        """Move a file or folder to `target` (which must not exist), creating `target`'s folder;
        raises OSError when it cannot."""
        ...
