"""Files that stand in for data that was never fetched: Git LFS pointers.

A checkout without ``git lfs pull`` (a CI job's, a clone with ``GIT_LFS_SKIP_SMUDGE=1``) leaves each
LFS-tracked file as a small text file naming the real one's hash and size. Read as an image, audio or
a tar shard it is only "not an image" or "less than one tar header"; these helpers name the cause.
DVC leaves nothing in the file's place, only a ``.dvc`` file beside where it goes: that file is
named instead (:func:`dvc_reason`).
"""

from __future__ import annotations

LFS_SPEC = b"version https://git-lfs.github.com/spec/v1"
"""The first line of every Git LFS pointer (the spec's ``version`` key, which must come first)."""

LFS_POINTER = "a Git LFS pointer (the file was not fetched): run `git lfs pull`"
"""The reason given for a file or shard that is a Git LFS pointer."""

DVC_POINTER = "a DVC pointer file (the data it tracks was not fetched): run `dvc pull`"
"""The reason given for a ``.dvc`` file met among the data: DVC leaves it beside the file or folder it
tracks, which is missing until ``dvc pull``."""

# git-lfs itself reads no file larger than this as a pointer (its blobSizeCutoff)
_MAX_POINTER = 1024


def is_lfs_pointer(data: bytes) -> bool:
    """Whether ``data`` (a file's bytes, or its first ones) is a Git LFS pointer file.

    Example:
        >>> is_lfs_pointer(b"version https://git-lfs.github.com/spec/v1\\noid sha256:ab\\nsize 12\\n")
        True
        >>> is_lfs_pointer(b"\\x89PNG\\r\\n\\x1a\\n")
        False
    """
    return len(data) < _MAX_POINTER and data[:len(LFS_SPEC)] == LFS_SPEC


def pointer_reason(data: bytes) -> str | None:
    """:data:`LFS_POINTER` when ``data`` is a Git LFS pointer, else None.

    Example:
        >>> pointer_reason(b"version https://git-lfs.github.com/spec/v1\\n")
        'a Git LFS pointer (the file was not fetched): run `git lfs pull`'
    """
    return LFS_POINTER if is_lfs_pointer(data) else None


def dvc_reason(name: str) -> str | None:
    """:data:`DVC_POINTER` when the file ``name`` is a DVC pointer file (``photo.jpg.dvc``), else None.

    Example:
        >>> dvc_reason("raw/0001.jpg.dvc") is not None, dvc_reason("raw/0001.jpg")
        (True, None)
    """
    return DVC_POINTER if name.endswith(".dvc") else None
