"""`index.location`: a URL where an index can be written and listed (`s3://`, `gs://`, `gcs://`,
`file://` outside the repository), with no credentials, query string or fragment; anything else
is a one-line error naming the config file, the line and the key."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import BASIC_CONFIG, git_init
from eval_firewall.config import load_config
from eval_firewall.errors import UserError

LINE = BASIC_CONFIG.count("\n") + 2         # the line of `location:` below


def write(root: Path, location: str) -> Path:
    path = root / ".eval-firewall.yml"
    quoted = json.dumps(location)               # a YAML double-quoted scalar
    path.write_text(BASIC_CONFIG + f"index:\n  location: {quoted}\n", encoding="utf-8")
    return path


def error(root: Path, location: str) -> str:
    with pytest.raises(UserError) as info:
        load_config(write(root, location))
    text = str(info.value)
    assert "\n" not in text
    return text


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git_init(root)
    return root


@pytest.mark.parametrize("location", ["s3://bucket/index", "gs://bucket/a/b", "gcs://bucket/c",
                                      "s3://bucket", "s3://bucket/a%2Fb"])
def test_object_storage_locations_are_accepted(repo: Path, location: str) -> None:
    assert load_config(write(repo, location)).index.location == location


def test_a_file_url_outside_the_repository_is_accepted(repo: Path, tmp_path: Path) -> None:
    outside = f"file://{tmp_path / 'store'}"
    assert load_config(write(repo, outside)).index.location == outside
    assert load_config(repo / ".eval-firewall.yml").index.location == outside


def test_no_index_location_is_the_default(repo: Path) -> None:
    (repo / ".eval-firewall.yml").write_text(BASIC_CONFIG, encoding="utf-8")
    assert load_config(repo / ".eval-firewall.yml").index.location is None


PREFIX = f".eval-firewall.yml:{LINE}: field 'index.location': "
SCHEMES = "(use one of s3://, gs://, gcs://, file://)"

REFUSED = [
    ("hf://datasets/org/index", f"an index cannot be written or listed at hf:// URLs {SCHEMES}"),
    ("https://h.example/index", f"an index cannot be written or listed at https:// URLs {SCHEMES}"),
    ("ftp://h.example/index", f"an index cannot be written or listed at ftp:// URLs {SCHEMES}"),
    ("data/index", "the index location must be a URL (s3://, gs://, gcs://, file://), outside "
                   "the repository (got 'data/index')"),
    ("/srv/index", "the index location must be a URL (s3://, gs://, gcs://, file://), outside "
                   "the repository (got '/srv/index')"),
    ("", "the index location must be a URL (s3://, gs://, gcs://, file://), outside the "
         "repository (got '')"),
    ("s3://AKIAKEY:secret@bucket/index",
     "a URL must not hold credentials: they come from the environment"),
    ("s3://bucket/index?X-Amz-Signature=abc",
     "a URL must not hold a query string or fragment (no presigned URLs)"),
    ("gs://bucket/index#frag", "a URL must not hold a query string or fragment (no presigned URLs)"),
    ("s3:///index", "the URL names no bucket (got 's3:///index')"),
    ("file://relative/index",
     "a file:// URL is absolute, with no host: file:///path (got 'file://relative/index')"),
    # fsspec opens file://localhost/x as the relative path localhost/x
    ("file://localhost/srv/index",
     "a file:// URL is absolute, with no host: file:///path (got 'file://localhost/srv/index')"),
    ("s3://bucket/x\n::error::forged", "a URL must not hold control or invisible (format) "
                                        "characters"),
    ("s3://bucket/x\u202ecod.exe", "a URL must not hold control or invisible (format) "
                                   "characters"),
    # fsspec knows no upper-case protocol
    ("S3://bucket/index", "write the URL scheme in lower case (s3://)"),
]


@pytest.mark.parametrize("location,message", REFUSED, ids=[loc or "empty" for loc, _ in REFUSED])
def test_a_refused_location_is_one_line_naming_file_line_and_key(repo: Path, location: str,
                                                                 message: str) -> None:
    assert error(repo, location) == PREFIX + message


def test_credentials_never_reach_the_message(repo: Path) -> None:
    assert "secret" not in error(repo, "gs://user:secret@bucket/index")
    assert "secret" not in error(repo, "https://user:secret@h.example/index")


INSIDE = ("the index location must be outside the repository (and not hold it): a pull request "
          "could commit files there (got '{}')")


def test_a_file_url_inside_the_repository_or_holding_it_is_refused(repo: Path) -> None:
    for location in (f"file://{repo}/index", f"file://{repo}", f"file://{repo.parent}",
                     f"file://{repo}/data/../.git/index", f"file://{repo.parent}/x/../repo/i"):
        assert error(repo, location) == PREFIX + INSIDE.format(location)


def test_a_file_url_through_a_link_into_the_repository_is_refused(repo: Path,
                                                                  tmp_path: Path) -> None:
    (repo / "index").mkdir()
    os.symlink(repo / "index", tmp_path / "linked")
    location = f"file://{tmp_path / 'linked'}/chunks"
    assert error(repo, location) == PREFIX + INSIDE.format(location)
    # fsspec opens a file:// path literally: %2F is no slash, so this folder is outside
    literal = f"file://{repo}%2Findex"
    assert load_config(write(repo, literal)).index.location == literal
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    if sys.version_info < (3, 13):          # later, resolve() leaves a loop as it is
        assert error(repo, f"file://{tmp_path}/loop/x") == PREFIX + (
            f"cannot resolve the folder: RuntimeError (got 'file://{tmp_path}/loop/x')")


def test_a_url_elsewhere_is_still_refused_and_the_line_is_exact(repo: Path) -> None:
    text = BASIC_CONFIG.replace('"data/eval/*.jsonl"', '"s3://bucket/eval.jsonl"')
    (repo / ".eval-firewall.yml").write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match="only in a train dataset's paths"):
        load_config(repo / ".eval-firewall.yml")
    assert write(repo, "hf://x").read_text().splitlines()[LINE - 1] == '  location: "hf://x"'
