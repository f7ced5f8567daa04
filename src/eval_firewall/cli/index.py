"""``eval-firewall index build|status``: the persistent train index in the cache directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import UserError
from ..home import DEFAULT_CACHE
from .options import QUIET, RAY_ADDRESS

if TYPE_CHECKING:
    from ..config import Config
    from ..index import IndexStore
    from ..progress import Progress

_CONFIG = click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
                       help="Config file. Default: .eval-firewall.yml in the current directory "
                            "or the repository root above it.")
_CACHE = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                      default=Path(DEFAULT_CACHE), show_default=True,
                      help="Cache directory holding the index (where `audit` and `github` "
                           "look for it).")


@click.group()
def index() -> None:
    """The train index: the train side of the overlap audit, kept between runs.

    One memory-mapped chunk per train file (its rows, normalized-text hashes, lexical and
    containment postings and static vectors), keyed by the file's git blob id or content hash, in the
    cache directory. `audit` builds missing chunks itself; `index build` builds them ahead
    (e.g. in the default branch's push workflow, so pull requests restore them).
    """


def _store(config_path: Path | None, cache_dir: Path, quiet: bool
           ) -> tuple[Config, IndexStore, Progress]:
    from ..audits import RULES
    from ..cache import Cache
    from ..config import load_config
    from ..index import IndexStore
    from ..index.remote import remote_index
    from ..progress import Progress

    config = load_config(config_path, rules=RULES)
    progress = Progress(enabled=not quiet)
    cache = Cache(cache_dir, progress)
    if not cache.enabled:
        raise UserError("the cache directory cannot hold the index (see the warning above)",
                        path=str(cache_dir))
    return config, IndexStore(cache, progress, remote_index(config)), progress


@index.command()
@_CONFIG
@_CACHE
@QUIET
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Where missing chunks are computed: in this process, or one Ray task per "
                   "train file (needs 'eval-firewall[ray]'); the index is the same.")
@RAY_ADDRESS
@click.option("--prune-location", is_flag=True,
              help="Also delete, at the policy's index.location, what no train file of this "
                   "config uses (chunks, and files a kept chunk's manifest no longer lists), "
                   "written at least --prune-older-than hours ago. Only for a location that "
                   "this config alone publishes to.")
@click.option("--prune-older-than", "prune_hours", type=click.FloatRange(min=0), default=24.0,
              show_default=True, metavar="HOURS",
              help="With --prune-location: how long ago a file must have been written to be "
                   "deleted (so a chunk that a concurrent or newer build just published stays).")
def build(config_path: Path | None, cache_dir: Path, quiet: bool, engine: str,
          ray_address: str | None, prune_location: bool, prune_hours: float) -> None:
    """Build (or update) the index of the config's train datasets.

    Only chunks of new or changed train files are built; the static vectors of the
    configured model are added when the paraphrase search would use them. Chunks of files
    no longer configured, or changed since, are removed from the cache directory. With the
    policy's `index.location` (object storage), a chunk found there is not built again,
    and every chunk not there yet is published there; nothing is deleted there unless
    --prune-location is given.
    """
    from ..embeddings import Models
    from ..index.corpus import train_corpus
    from ..index.store import load_train
    from ..overlap.semantic import use_exact

    config, store, progress = _store(config_path, cache_dir, quiet)
    if prune_location and store.remote is None:
        raise UserError("--prune-location deletes at the index location, which the config "
                        "does not name", path=config.source, field="index.location")
    semantic = config.audits.overlap.semantic
    models = Models(semantic.model, semantic.batch_size, config_path=config.source,
                    announce=progress.stage)
    if engine == "ray":
        from ..index import ray_engine

        vectors = config.audits.overlap.enabled and semantic.enabled and \
            semantic.retriever != "exact"      # encoded by the workers
        ray_engine.build(config, [d for d in config.datasets if d.role == "train"], store,
                         progress, ray_address, models.retriever() if vectors else None)
    datasets = []
    for ds in config.datasets:
        if ds.role == "train":
            with progress.stage(f"index {ds.name}") as stage:
                datasets.append(load_train(config, ds, store, on_rows=stage.advance))
    corpus = train_corpus(datasets, progress.warn)
    if corpus is not None and config.audits.overlap.enabled and semantic.enabled \
            and not use_exact(semantic, len(corpus)):
        with progress.stage("static vectors", total=len(corpus)) as stage:
            corpus.vector_index(models.retriever())
            stage.advance(len(corpus))
    keep = {c.key for d in datasets for c in d.rows.chunks}
    removed = store.prune(keep)
    published = _publish(config, store, corpus, progress)
    deleted = store.remote.prune(keep, prune_hours * 3600) \
        if prune_location and store.remote is not None else None
    click.echo(_summary(store, datasets, corpus, removed, published, deleted))


def _summary(store: IndexStore, datasets: list[Any], corpus: Any, removed: int, published: int,
             deleted: tuple[int, int] | None) -> str:
    """The one line `index build` ends with."""
    rows = sum(len(d.rows) for d in datasets)
    files = sum(len(d.files) for d in datasets)
    size = sum(c.nbytes for c in (corpus.chunks if corpus is not None else []))
    return (f"index: {files} train file(s), {rows:,} rows, {store.built} chunk(s) built, "
            f"{size / 2**20:,.1f} MiB in {store.root}"
            + (f"; removed {removed} chunk(s) no train file uses" if removed else "")
            + (f"; {published} chunk(s) published to {store.remote.display}"
               if store.remote is not None else "")
            + (f"; deleted {deleted[0]} chunk(s) and {deleted[1]} other file(s) there no "
               "train file uses" if deleted is not None else ""))


def _publish(config: Config, store: IndexStore, corpus: Any, progress: Progress) -> int:
    """Put every chunk not at the index location yet there, with its lexical row norms under
    the whole set's weights (so a pull request's run fetches only its queries' postings); how
    many were."""
    if store.remote is None or corpus is None:
        return 0
    if config.audits.overlap.enabled and config.audits.overlap.near_duplicate.enabled:
        from ..index.train import ChunkedLexical

        ChunkedLexical(corpus.chunks).prepare()
    chunks = corpus.chunks
    published = 0
    with progress.stage(f"publish to {store.remote.display}", total=len(chunks)) as stage:
        for chunk in chunks:
            published += store.remote.publish(chunk)
            stage.advance()
    return published


@index.command()
@_CONFIG
@_CACHE
@click.option("--verify", is_flag=True,
              help="Check every chunk file's digest too (reads the whole index).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
def status(config_path: Path | None, cache_dir: Path, verify: bool, fmt: str) -> None:
    """Say which train files and rows the index covers, for which model and settings, its
    size, and whether it is current. Exits 0 when every train file has a current chunk,
    1 otherwise."""
    from dataclasses import asdict

    from ..index.postings import POSTINGS
    from ..index.status import index_status

    config, store, _ = _store(config_path, cache_dir, True)
    found = index_status(config, store, verify=verify)
    current = all(f.current for f in found)
    model = config.audits.overlap.semantic.model
    if fmt == "json":
        click.echo(json.dumps({"current": current, "model": model, "directory": str(store.root),
                               "files": [{**asdict(f), "current": f.current} for f in found]},
                              indent=2))
    else:
        for f in found:
            kinds = sorted({n.split(".")[0] for n in f.arrays} & set(POSTINGS))
            what = (f"{f.rows:,} rows, {f.nbytes / 2**20:,.1f} MiB, postings: "
                    f"{', '.join(kinds) or 'none'}, vectors: "
                    f"{', '.join(f.vectors) or 'none'}" if f.current else f.state)
            where = {None: "", True: ", published", False: ", not published"}[f.published] \
                if f.current else ""
            click.echo(f"{f.dataset}  {f.path}  {f.version[:24]}  {what}{where}")
        rows = sum(f.rows for f in found)
        size = sum(f.nbytes for f in found)
        missing = sum(not f.current for f in found)
        click.echo(f"{len(found)} train file(s), {rows:,} rows indexed, {size / 2**20:,.1f} MiB; "
                   f"model {model}; "
                   + ("current" if current else f"not current: {missing} file(s) to build "
                      "(eval-firewall index build)"))
    sys.exit(0 if current else 1)
