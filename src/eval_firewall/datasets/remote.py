"""Train files outside the repository: URLs read through fsspec.

A train dataset's ``paths`` may hold URLs (``s3://``, ``gs://``, ``hf://datasets/...``,
``https://``, ``file://``). Credentials and endpoints come from each client's standard
environment (for S3: ``AWS_*``, ``AWS_ENDPOINT_URL``), never from the config. A URL is listed
(globs where the filesystem lists, at most ``limits.max_remote_files`` files) with its version
(ETag, version id, generation or commit) and size, so a file whose version has an index chunk
is never read again; a file that must be read is copied, bounded by ``limits.max_file_bytes``,
into a private temporary file and read by the same readers (and checks) as a local file. In
reports a remote row's location is its URL without credentials, query string or fragment.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import UserError

SCHEMES = ("s3", "gs", "gcs", "hf", "https", "file")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")
_BLOCK = 1 << 20


def is_url(value: str) -> bool:
    """Whether a configured path is a URL (``scheme://...``) rather than a repository path."""
    return bool(_URL.match(value))


def public_url(url: str) -> str:
    """A URL as reports show it: without user, password, query string or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def refusal(value: str) -> str | None:
    """Why a configured URL is refused before anything is fetched; None when it is fine."""
    scheme = value.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        return (f"the URL scheme '{scheme}' is not supported (use one of "
                f"{', '.join(s + '://' for s in SCHEMES)})")
    parts = urlsplit(value)
    if parts.username or parts.password:
        return "a URL must not hold credentials: they come from the environment"
    if parts.query or parts.fragment:
        return "a URL must not hold a query string or fragment (no presigned URLs)"
    return None


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file behind a URL: where fsspec finds it, how reports name it, its version."""

    url: str            # the full URL fsspec opens
    display: str        # the URL as reports show it (public_url)
    version: str | None  # ETag / version id / generation / commit; None: the client gives none
    size: int | None

    @property
    def name(self) -> str:
        """The file's base name (its extensions tell its format)."""
        return PurePosixPath(urlsplit(self.url).path).name or "data"


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of a URL and the path in it (a missing client: a user error
    naming the package to install)."""
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:      # pragma: no cover - fsspec comes with the datasets stack
        raise UserError("reading a URL needs fsspec: pip install 'eval-firewall[remote]'",
                        path=url) from None
    del fsspec
    scheme = url.split("://", 1)[0].lower()
    with _online(scheme):
        try:
            fs, path = url_to_fs(url)
        except ImportError as exc:
            package = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "hf": "huggingface_hub",
                       "https": "aiohttp"}.get(scheme, str(exc))
            raise UserError(f"reading {scheme}:// URLs needs the '{package}' package",
                            path=public_url(url),
                            hint=f"pip install {package} (or 'eval-firewall[remote]')") from None
    return fs, path


@contextmanager
def _online(scheme: str) -> Iterator[None]:
    """``HF_HUB_OFFLINE`` keeps the embedding model offline (embeddings/base.py sets it); a dataset
    the user configured on the Hub is still read."""
    if scheme != "hf":
        yield
        return
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "0"
    constants: Any = None
    saved: Any = None
    try:
        import huggingface_hub.constants as hub_constants

        constants, saved = hub_constants, hub_constants.HF_HUB_OFFLINE
        constants.HF_HUB_OFFLINE = False
    except (ImportError, AttributeError):
        pass
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before
        if constants is not None:
            constants.HF_HUB_OFFLINE = saved


def _version(info: dict[str, Any]) -> str | None:
    for key in ("VersionId", "generation", "ETag", "etag", "blob_id", "sha256", "md5Hash"):
        value = info.get(key)
        if value not in (None, "", "null"):
            return f"{key}:{str(value).strip(chr(34))}"
    last = info.get("last_commit")
    oid = getattr(last, "oid", None) or (last.get("oid") if isinstance(last, dict) else None)
    if oid:
        return f"commit:{oid}"
    return None


def _url_of(fs: Any, path: str, scheme: str) -> str:
    unstripped = fs.unstrip_protocol(path)
    return unstripped if "://" in unstripped else f"{scheme}://{path}"


def list_files(pattern: str, *, max_files: int, source: str | None = None,
               line: int | None = None, field: str | None = None) -> list[RemoteFile]:
    """The files a URL (or URL glob) names, sorted, with their versions; an error when it
    names none, or more than ``max_files``."""
    scheme = pattern.split("://", 1)[0].lower()
    shown = public_url(pattern)
    fs, path = filesystem(pattern)
    try:
        with _online(scheme):
            if _GLOB.search(path):
                found = fs.glob(path, detail=True, maxdepth=None)
                infos = [dict(v, name=k) for k, v in sorted(found.items())
                         if v.get("type", "file") == "file"]
            else:
                infos = [dict(fs.info(path))]
                if infos[0].get("type", "file") != "file":
                    raise UserError(f"URL '{shown}' is not a file (use a glob for a folder)",
                                    path=source, line=line, field=field)
    except FileNotFoundError:
        infos = []
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a client's error, said in one line
        raise UserError(f"cannot list '{shown}': {type(exc).__name__}: {exc}"[:400],
                        path=source, line=line, field=field) from None
    if not infos:
        raise UserError(f"URL '{shown}' matches no file", path=source, line=line, field=field)
    if len(infos) > max_files:
        raise UserError(f"URL '{shown}' matches more than {max_files} files", path=source,
                        line=line, field=field, hint="raise limits.max_remote_files (a policy "
                        "change) or narrow the glob")
    out = []
    for info in infos:
        url = _url_of(fs, info["name"], scheme)
        size = info.get("size")
        out.append(RemoteFile(url, public_url(url), _version(info),
                              int(size) if size is not None else None))
    return out


@contextmanager
def fetched(remote: RemoteFile, max_bytes: int) -> Iterator[Path]:
    """A private local copy of a remote file (same base name, so its format is told alike),
    at most ``max_bytes`` read; removed on exit."""
    folder = tempfile.mkdtemp(prefix="eval-firewall-remote-")
    target = Path(folder) / remote.name
    try:
        if remote.size is not None and remote.size > max_bytes:
            raise UserError(f"the file is larger than limits.max_file_bytes ({max_bytes} bytes)",
                            path=remote.display)
        scheme = remote.url.split("://", 1)[0].lower()
        fs, path = filesystem(remote.url)
        copied = 0
        try:
            with _online(scheme), fs.open(path, "rb") as src, open(target, "xb") as dst:
                while block := src.read(_BLOCK):
                    copied += len(block)
                    if copied > max_bytes:
                        raise UserError("the file is larger than limits.max_file_bytes "
                                        f"({max_bytes} bytes)", path=remote.display)
                    dst.write(block)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"cannot read: {type(exc).__name__}: {exc}"[:400],
                            path=remote.display) from None
        yield target
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def digest_version(path: Path) -> str:
    """The version of a fetched file whose client gave none: the hash of its bytes."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            h.update(block)
    return f"blake2b:{h.hexdigest()}"
