"""The persistent train index: one memory-mapped chunk of named arrays per train file.

The folders are the pipeline's: :mod:`.chunk` (a chunk's files, its signed manifest, mapping
and integrity checks), :mod:`.postings` (the registry of posting kinds a chunk holds),
:mod:`.store` (keys, building, reading a train dataset from its chunks), :mod:`.columns` (row
sequences over chunks), :mod:`.train` (the overlap audit's train side over chunks),
:mod:`.units` (the paraphrase search's units, whole rows and windows, over chunks),
:mod:`.status` (what ``eval-firewall index status`` reports) and :mod:`.ray_engine` (``index build
--engine ray``: chunks computed by Ray tasks, written by the driver).
"""

from __future__ import annotations

from .store import IndexStore, load_train

__all__ = ["IndexStore", "load_train"]
