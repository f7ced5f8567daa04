"""Train sets in object storage: `s3://` train paths read through fsspec (s3fs) from a real
S3-compatible server (moto's server, on 127.0.0.1, started here), the index keyed by the
objects' ETags (an unchanged object is never read again), remote locations in reports and as
policy (a pull request cannot add or change one)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_harness import invoke

from conftest import BASIC_CONFIG, git_commit, git_init, gsm8k, write_jsonl
from s3_server import S3Server

boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

TRAIN = gsm8k("train", 160)
TEST = gsm8k("test", 30)
BUCKET = "corpus"
SHARDS = 8

CONFIG = BASIC_CONFIG.replace('"data/train/*.jsonl"', f'"s3://{BUCKET}/train/shard-*.jsonl"')
assert BUCKET in CONFIG


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    env = server.env
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def client():  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def upload_shards(prefix: str, rows: list[dict], shards: int = SHARDS) -> None:
    c = client()
    try:
        c.create_bucket(Bucket=BUCKET)
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    size = (len(rows) + shards - 1) // shards
    for i in range(shards):
        body = "".join(json.dumps(r) + "\n" for r in rows[i * size:(i + 1) * size])
        c.put_object(Bucket=BUCKET, Key=f"{prefix}/shard-{i:02d}.jsonl", Body=body.encode())


def clear_fs_cache() -> None:
    """fsspec keeps listings per process; a new run starts without them (as a new process)."""
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def make_repo(tmp_path: Path, prefix: str) -> Path:
    git_init(tmp_path)
    evals = [dict(r) for r in TEST]
    evals[3]["question"] = TRAIN[100]["question"]       # in shard 5
    evals[9]["question"] = TRAIN[7]["question"]         # in shard 0
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG.replace("/train/", f"/{prefix}/"))
    (tmp_path / ".gitignore").write_text(".eval-firewall-cache/\n")
    git_commit(tmp_path, "base")
    return tmp_path


def audit(root: Path, *args: str) -> tuple[int, dict]:

    clear_fs_cache()
    done = invoke(root, "audit", "-q", "--format", "json", *args)
    assert done.exit_code in (0, 1), done.output
    return done.exit_code, json.loads(done.stdout)


def test_leaks_in_eight_s3_shards_found_with_their_rows_and_not_read_again(
        s3: S3Server, tmp_path: Path) -> None:
    upload_shards("a", TRAIN)
    root = make_repo(tmp_path, "a")
    code, report = audit(root)
    assert code == 1
    exact = sorted((f["line"], f["match"]["path"], f["match"]["line"])
                   for f in report["findings"] if f["rule"] == "exact-duplicate")
    assert exact == [(4, f"s3://{BUCKET}/a/shard-05.jsonl", 1),
                     (10, f"s3://{BUCKET}/a/shard-00.jsonl", 8)]
    assert s3.object_reads(f"{BUCKET}/a/") == SHARDS

    before = len(s3.requests)
    code, again = audit(root)          # unchanged objects: versions compared, none read
    assert code == 1 and again["findings"] == report["findings"]
    assert s3.object_reads(f"{BUCKET}/a/") == SHARDS
    assert not [r for r in s3.requests[before:] if r[0] == "GET" and r[1].endswith(".jsonl")]
    code, pr = audit(root, "--base", "HEAD")     # a pull request's run: the same, nothing read
    assert code == 0 and s3.object_reads(f"{BUCKET}/a/") == SHARDS   # the leaks are not new
    assert len([f for f in pr["findings"] if f["rule"] == "exact-duplicate"]) == 2

    c = client()                       # one shard replaced: only it is read again
    body = "".join(json.dumps(r) + "\n" for r in [*TRAIN[40:59], TEST[15]])
    c.put_object(Bucket=BUCKET, Key="a/shard-03.jsonl", Body=body.encode())
    code, third = audit(root)
    assert s3.object_reads(f"{BUCKET}/a/") == SHARDS + 1
    assert (16, f"s3://{BUCKET}/a/shard-03.jsonl", 20) in [
        (f["line"], f["match"]["path"], f["match"]["line"])
        for f in third["findings"] if f["rule"] == "exact-duplicate"]


def test_remote_without_cache_gzip_parquet_and_a_bad_line(s3: S3Server, tmp_path: Path) -> None:
    """JSONL.gz and Parquet objects, and a bad line: an invalid-row at the object's URL and
    line, never a link; read the same with and without the cache."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    c = client()
    try:
        c.create_bucket(Bucket=BUCKET)
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    lines = [json.dumps(r) for r in TRAIN[:60]]
    lines[4] = '{"question": "broken'
    c.put_object(Bucket=BUCKET, Key="b/shard-00.jsonl.gz",
                 Body=gzip.compress(("\n".join(lines) + "\n").encode()))
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(TRAIN[60:160]), buf)
    c.put_object(Bucket=BUCKET, Key="b/shard-01.parquet", Body=buf.getvalue())
    root = make_repo(tmp_path, "b")
    config = (root / ".eval-firewall.yml").read_text()
    (root / ".eval-firewall.yml").write_text(config.replace("shard-*.jsonl", "shard-*"))
    git_commit(root, "both formats")
    results = []
    for args in ((), ("--no-cache",)):
        code, report = audit(root, *args)
        assert code == 1
        results.append(sorted((f["rule"], f["path"], f["line"], (f.get("match") or {}).get("path"),
                               (f.get("match") or {}).get("line")) for f in report["findings"]))
    assert results[0] == results[1]
    assert ("invalid-row", f"s3://{BUCKET}/b/shard-00.jsonl.gz", 5, None, None) in results[0]
    assert ("exact-duplicate", "data/eval/eval.jsonl", 4, f"s3://{BUCKET}/b/shard-01.parquet",
            41) in results[0]

    from eval_firewall.github.comment import Target

    target = Target("https://github.example", "o/r", "0" * 40)
    assert target.link(f"s3://{BUCKET}/b/shard-00.jsonl.gz", 5) is None
    assert target.link("data/eval/eval.jsonl", 4).endswith("data/eval/eval.jsonl#L4")


def test_url_refusals(tmp_path: Path) -> None:
    """A URL only in a train dataset's paths, with no credentials or query string, of a
    supported scheme; and reports show a URL without them."""
    from eval_firewall.config import load_config
    from eval_firewall.datasets.remote import public_url
    from eval_firewall.errors import UserError

    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST[:3])
    cases = {
        CONFIG.replace('"data/eval/*.jsonl"', '"s3://corpus/eval.jsonl"'): "only in a train",
        CONFIG.replace("s3://corpus/train/shard-*.jsonl",
                       "s3://key:secret@corpus/x.jsonl"): "credentials",
        CONFIG.replace("s3://corpus/train/shard-*.jsonl",
                       "https://h.example/x.jsonl?X-Amz-Signature=1"): "query string",
        CONFIG.replace("s3://corpus/train/shard-*.jsonl", "ftp://h.example/x.jsonl"): "scheme",
    }
    for text, why in cases.items():
        (tmp_path / ".eval-firewall.yml").write_text(text)
        with pytest.raises(UserError, match=why):
            load_config(tmp_path / ".eval-firewall.yml")
    assert public_url("https://u:p@h.example:8443/a/b.jsonl?sig=1#x") == \
        "https://h.example:8443/a/b.jsonl"


def test_remote_glob_file_count_is_bounded(s3: S3Server, tmp_path: Path) -> None:
    upload_shards("c", TRAIN[:40], shards=4)
    root = make_repo(tmp_path, "c")
    (root / ".eval-firewall.yml").write_text(
        (root / ".eval-firewall.yml").read_text() + "limits:\n  max_remote_files: 3\n")

    clear_fs_cache()
    done = invoke(root, "audit", "-q")
    assert done.exit_code == 2
    assert "matches more than 3 files" in done.output and "Traceback" not in done.output


def test_a_pull_request_cannot_add_or_change_a_remote_location() -> None:
    """Adding or changing a URL (a new train dataset with one, too) is a loosening: pending,
    and not applied to the run until approved."""
    from eval_firewall.config import Config
    from eval_firewall.policy.diff import diff_configs
    from eval_firewall.policy.effective import decide, effective_config

    def config(datasets: list[dict]) -> Config:
        return Config.model_validate({"datasets": datasets})

    ev = {"name": "eval", "role": "eval", "paths": ["data/eval/*.jsonl"], "text": ["q"]}
    base = config([{"name": "train", "role": "train", "paths": ["s3://corpus/a/*.jsonl"],
                    "text": ["q"]}, ev])
    for paths, direction in ((["s3://corpus/a/*.jsonl", "data/more.jsonl"], "tighten"),
                             (["s3://attacker/x.jsonl"], "loosen"),
                             (["s3://corpus/a/*.jsonl", "https://attacker.example/x"], "loosen")):
        head = config([{"name": "train", "role": "train", "paths": paths, "text": ["q"]}, ev])
        [change] = diff_configs(base, head, {})
        assert (change.key, change.direction) == ("datasets[train].paths", direction)
        decided = decide([change], None)
        applied = effective_config(base, head, decided)
        expected = paths if direction == "tighten" else ["s3://corpus/a/*.jsonl"]
        assert applied.datasets[0].paths == expected

    added = config([*base.model_dump()["datasets"],
                    {"name": "more", "role": "train", "paths": ["gs://attacker/x.jsonl"],
                     "text": ["q"]}])
    [change] = diff_configs(base, added, {})
    assert (change.key, change.direction) == ("datasets[more]", "loosen")
    applied = effective_config(base, added, decide([change], None))
    assert [d.name for d in applied.datasets] == ["train", "eval"]
    local = config([*base.model_dump()["datasets"],
                    {"name": "more", "role": "train", "paths": ["data/x.jsonl"], "text": ["q"]}])
    assert [c.direction for c in diff_configs(base, local, {})] == ["tighten"]


# --- the Ray engine ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def local_ray(s3: S3Server) -> Iterator[object]:
    """A local Ray on 127.0.0.1 for the session (2 CPUs; the S3 endpoint in its workers'
    environment), shut down at its end."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


def chunk_contents(cache: Path) -> dict[str, tuple]:
    """Each chunk's rows, arrays and problems by key (its signature aside: each cache has
    its own key)."""
    import numpy as np
    import pyarrow as pa

    out = {}
    for chunk in sorted((cache / "index/chunks").iterdir()):
        if chunk.name.startswith("."):
            continue
        manifest = json.loads((chunk / "MANIFEST.json").read_text())
        with pa.memory_map(str(chunk / "rows.arrow")) as source:
            rows = pa.ipc.open_file(source).read_all().to_pylist()
        arrays = {p.name: np.load(p).tolist() for p in sorted(chunk.glob("*.npy"))}
        out[chunk.name] = (rows, arrays, manifest.get("problems"), manifest.get("source"),
                           manifest["files"])      # sizes, digests, the rows' layout
    return out


@pytest.mark.ray
def test_ray_index_equals_the_local_one_and_gives_the_same_findings(
        local_ray: object, tmp_path: Path) -> None:

    git_init(tmp_path)
    write_jsonl(tmp_path / "data/train/a.jsonl", TRAIN[:80])
    lines = [json.dumps(r) for r in TRAIN[80:]]
    lines[6] = '{"question": 3}'
    lines[9] = '{"question": "unterminated'
    (tmp_path / "data/train/b.jsonl").write_text("\n".join(lines) + "\n")
    evals = [dict(r) for r in TEST]
    evals[3]["question"] = TRAIN[100]["question"]
    evals[7]["question"] = TRAIN[10]["question"].replace(".", ",", 1) + " now"
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG.replace(
        f'"s3://{BUCKET}/train/shard-*.jsonl"', '"data/train/*.jsonl"'))
    (tmp_path / ".gitignore").write_text("ray-cache/\nlocal-cache/\n")
    git_commit(tmp_path, "base")

    done = invoke(tmp_path, "index", "build", "-q", "--engine", "ray", "--cache-dir", "ray-cache")
    assert done.exit_code == 0, done.output
    assert "2 chunk(s) built" in done.output
    done = invoke(tmp_path, "index", "build", "-q", "--cache-dir", "local-cache")
    assert done.exit_code == 0, done.output
    by_ray, local = chunk_contents(tmp_path / "ray-cache"), chunk_contents(tmp_path / "local-cache")
    assert len(by_ray) == 2 and by_ray == local
    reports = []
    for cache in ("ray-cache", "local-cache"):
        done = invoke(tmp_path, "audit", "-q", "--format", "json", "--cache-dir", cache)
        assert done.exit_code == 1, done.output
        reports.append(json.loads(done.stdout)["findings"])
    assert reports[0] == reports[1]
    invalid = sorted((f["path"], f["line"]) for f in reports[0] if f["rule"] == "invalid-row")
    assert invalid == [("data/train/b.jsonl", 7), ("data/train/b.jsonl", 10)]
    assert ("exact-duplicate", "data/train/b.jsonl", 21) in [
        (f["rule"], f["match"]["path"], f["match"]["line"]) for f in reports[0] if f.get("match")]


@pytest.mark.ray
def test_ray_index_of_eight_s3_shards_then_an_audit_reading_none(
        local_ray: object, s3: S3Server, tmp_path: Path) -> None:

    upload_shards("r", TRAIN)
    root = make_repo(tmp_path, "r")
    clear_fs_cache()
    done = invoke(root, "index", "build", "-q", "--engine", "ray")
    assert done.exit_code == 0, done.output
    assert "8 train file(s), 160 rows, 8 chunk(s) built" in done.output
    reads = s3.object_reads(f"{BUCKET}/r/")
    assert reads == SHARDS                    # each shard read once, by a Ray worker
    done = invoke(root, "index", "status")
    assert done.exit_code == 0, done.output
    assert f"s3://{BUCKET}/r/shard-07.jsonl" in done.output and "missing" not in done.output
    code, report = audit(root)
    assert code == 1
    exact = sorted((f["line"], f["match"]["path"], f["match"]["line"])
                   for f in report["findings"] if f["rule"] == "exact-duplicate")
    assert exact == [(4, f"s3://{BUCKET}/r/shard-05.jsonl", 1),
                     (10, f"s3://{BUCKET}/r/shard-00.jsonl", 8)]
    assert s3.object_reads(f"{BUCKET}/r/") == reads     # the audit read no train object


def test_hf_hub_offline_does_not_block_a_configured_dataset(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """The model stays offline (HF_HUB_OFFLINE=1), yet an hf:// dataset read runs online,
    and the setting is back after it. (No hub is reachable here: only the switch is tested.)"""
    constants = pytest.importorskip("huggingface_hub.constants")
    from eval_firewall.datasets.remote import _online

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with _online("hf"):
        assert os.environ["HF_HUB_OFFLINE"] == "0" and constants.HF_HUB_OFFLINE is False
    assert os.environ["HF_HUB_OFFLINE"] == "1" and constants.HF_HUB_OFFLINE is True
    with _online("s3"):
        assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_a_config_new_on_a_pull_request_cannot_bring_a_remote_location(tmp_path: Path) -> None:
    """No config at the base: the head's is new policy, but its remote train dataset is a
    pending loosening, left out of the run (nothing is fetched) and failing it."""
    from conftest import git_commit as commit
    from eval_firewall.audits import RULES
    from eval_firewall.config import load_config
    from eval_firewall.policy.load import gate

    git_init(tmp_path)
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST[:5])
    commit(tmp_path, "data only")
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG.replace("corpus", "attacker-bucket"))
    commit(tmp_path, "a config naming a bucket")
    head = load_config(tmp_path / ".eval-firewall.yml", rules=RULES)
    g = gate(head, "HEAD~1", rules=RULES)
    assert g.new_policy and [d.name for d in g.config.datasets] == ["eval"]
    assert [(c.key, c.direction, c.status) for c in g.changes] == [
        ("datasets[train]", "loosen", "pending")]
    trusted = gate(head, "HEAD~1", rules=RULES, trust_head=True)
    assert [d.name for d in trusted.config.datasets] == ["train", "eval"]


SEARCH_CONFIG = BASIC_CONFIG.replace("semantic: {enabled: false}", "semantic: {retriever: static}")
assert "retriever: static" in SEARCH_CONFIG


@pytest.mark.ray
@pytest.mark.model
def test_audit_on_ray_searches_the_shards_and_finds_what_the_local_engine_finds(
        local_ray: object, tmp_path: Path) -> None:
    """`audit --engine ray`: the static vectors and the containment n-grams of four index
    shards searched in Ray tasks, top k merged; the same findings as `--engine local` (an
    exact copy, a near one, a quote inside a longer row and a paraphrase, in three shards)."""


    train = [dict(r) for r in TRAIN]
    train[130]["question"] = " ".join((TRAIN[131]["question"], TEST[5]["question"],
                                       TRAIN[132]["question"]))   # quoted in a longer row
    train[17]["question"] = TEST[8]["question"] + " Answer with a number."
    pair = json.loads((Path(__file__).parents[1] / "data/paraphrase_pairs.jsonl").read_text()
                      .splitlines()[0])
    assert pair["a"] == TEST[1]["question"] and pair["label"] == 1
    train[95]["question"] = pair["b"]               # a reworded eval row
    git_init(tmp_path)
    for s in range(4):
        write_jsonl(tmp_path / f"data/train/part-{s}.jsonl", train[s * 40:(s + 1) * 40])
    evals = [dict(r) for r in TEST[:20]]
    evals[2]["question"] = TRAIN[50]["question"]
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    (tmp_path / ".eval-firewall.yml").write_text(SEARCH_CONFIG)
    (tmp_path / ".gitignore").write_text("cache-*/\n")
    git_commit(tmp_path, "base")
    for engine in ("local", "ray"):      # the Ray workers encode the static vectors too
        done = invoke(tmp_path, "index", "build", "-q", "--engine", engine,
                   "--cache-dir", f"cache-{engine}")
        assert done.exit_code == 0 and "4 chunk(s) built" in done.output, done.output
    by_ray, local = chunk_contents(tmp_path / "cache-ray"), chunk_contents(tmp_path / "cache-local")
    assert by_ray == local and all(any(n.startswith("vectors.") for n in arrays)
                                   for _, arrays, *_ in local.values())
    assert not list((tmp_path / "cache-ray/index/chunks").glob(".tmp*"))   # staging removed
    reports = {}
    for engine in ("local", "ray"):
        done = invoke(tmp_path, "audit", "-q", "--format", "json", "--engine", engine,
                   "--cache-dir", f"cache-{engine}")
        assert done.exit_code == 1, done.output
        reports[engine] = json.loads(done.stdout)
    assert reports["ray"]["findings"] == reports["local"]["findings"]
    found = {(f["rule"], f["line"], f["match"]["path"], f["match"]["line"])
             for f in reports["ray"]["findings"] if f.get("match")}
    assert ("exact-duplicate", 3, "data/train/part-1.jsonl", 11) in found
    assert ("contained", 6, "data/train/part-3.jsonl", 11) in found
    assert ("near-duplicate", 9, "data/train/part-0.jsonl", 18) in found
    assert ("paraphrase", 2, "data/train/part-2.jsonl", 16) in found


@pytest.mark.ray
def test_ray_executor_runs_each_shard_in_a_worker_in_shard_order(
        local_ray: object, tmp_path: Path) -> None:
    """Each shard's search runs in a Ray worker (another process) opening the chunk from the
    cache directory; answers come back in shard order, as the local executor gives them."""
    import numpy as np

    from eval_firewall.search import shards

    git_init(tmp_path)
    for s in range(3):
        write_jsonl(tmp_path / f"data/train/part-{s}.jsonl", TRAIN[s * 30:s * 30 + 10 + s])
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST[:3])
    (tmp_path / ".eval-firewall.yml").write_text(SEARCH_CONFIG)
    from eval_firewall.audits import RULES
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.errors import UserError
    from eval_firewall.index import IndexStore, load_train
    from eval_firewall.index.corpus import train_corpus

    config = load_config(tmp_path / ".eval-firewall.yml", rules=RULES)
    store = IndexStore(Cache(tmp_path / "cache"))
    loaded = load_train(config, config.datasets[0], store)
    chunks = train_corpus([loaded]).chunks

    def where(chunk, scale):
        return os.getpid(), chunk.rows * scale, int(chunk.array("norm_hash")[0] % 1000)

    local = list(shards.LocalExecutor().map(where, chunks, 2))      # the driver maps them
    on_ray = list(shards.RayExecutor(local_ray).map(where, chunks, 2))
    assert [r[1:] for r in on_ray] == [r[1:] for r in local] and [r[1] for r in local] == [20, 22, 24]
    assert os.getpid() not in {pid for pid, _, _ in on_ray}
    assert np.all([pid == os.getpid() for pid, _, _ in local])

    tokens = chunks[1].directory / "containment.tokens.npy"   # changed after the driver's check
    data = bytearray(tokens.read_bytes())
    data[-1] ^= 1
    tokens.write_bytes(bytes(data))
    with pytest.raises(UserError, match="digest check"):
        list(shards.RayExecutor(local_ray).map(
            lambda chunk: int(chunk.array("containment.tokens")[-1]), chunks))


def test_a_ray_worker_writes_its_chunk_only_into_the_drivers_staging_directory(
        tmp_path: Path) -> None:
    """A worker that sees the driver's staging directory (its token) writes the chunk's files
    there for the driver to sign; one that does not (another filesystem) returns the contents."""
    from eval_firewall.audits import RULES
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.index import IndexStore, ray_engine

    write_jsonl(tmp_path / "data/train/a.jsonl", TRAIN[:12])
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST[:3])
    (tmp_path / ".eval-firewall.yml").write_text(SEARCH_CONFIG)
    config = load_config(tmp_path / ".eval-firewall.yml", rules=RULES)
    store = IndexStore(Cache(tmp_path / "cache"))
    ds, source = config.datasets[0], str(tmp_path / "data/train/a.jsonl")
    with ray_engine._staging(store) as (directory, token):
        staged = ray_engine._compute(config, ds, source, "data/train/a.jsonl", (directory, token))
        assert Path(staged["staged"]).parent == Path(directory) and staged["rows"] == 12
        assert sorted(p.name for p in Path(staged["staged"]).iterdir()) == sorted(staged["files"])
        elsewhere = ray_engine._compute(config, ds, source, "data/train/a.jsonl",
                                        (str(tmp_path), token))
        assert isinstance(elsewhere, tuple) and elsewhere[0].num_rows == 12
        wrong = ray_engine._compute(config, ds, source, "data/train/a.jsonl", (directory, "x" * 32))
        assert isinstance(wrong, tuple)
    assert not Path(directory).exists()


@pytest.mark.model
def test_a_worker_keeps_the_first_static_model_it_is_handed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Ray task gets its own copy of the static model from the object store; a worker
    keeps the first (with its cache of word vectors) for its later tasks, and their vectors
    are a fresh copy's, bit for bit."""
    import pickle

    import numpy as np

    from eval_firewall.audits import RULES
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.embeddings import Models
    from eval_firewall.index import IndexStore, ray_engine
    from eval_firewall.index.store import vectors_name

    write_jsonl(tmp_path / "data/train/a.jsonl", TRAIN[:30])
    write_jsonl(tmp_path / "data/train/b.jsonl", TRAIN[30:60])
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST[:3])
    (tmp_path / ".eval-firewall.yml").write_text(SEARCH_CONFIG)
    config = load_config(tmp_path / ".eval-firewall.yml", rules=RULES)
    model = Models(config.audits.overlap.semantic.model, config_path=config.source).retriever()
    copy = pickle.dumps(model)
    monkeypatch.setattr(ray_engine, "_RETRIEVERS", {})
    store, ds = IndexStore(Cache(tmp_path / "cache")), config.datasets[0]
    with ray_engine._staging(store) as staging:
        first, second = pickle.loads(copy), pickle.loads(copy)
        for name, handed in (("a", first), ("b", second)):
            staged = ray_engine._compute(config, ds, str(tmp_path / f"data/train/{name}.jsonl"),
                                         f"data/train/{name}.jsonl", staging, handed)
        assert ray_engine._RETRIEVERS == {model.key: first}
        vectors = np.load(Path(staged["staged"]) / f"{vectors_name(model.key)}.npy")
    fresh = pickle.loads(copy).encode([r["question"] for r in TRAIN[30:60]]).astype(np.float16)
    assert vectors.dtype == np.float16 and vectors.tobytes() == fresh.tobytes()


def test_audit_engine_ray_without_the_index_is_a_usage_error(tmp_path: Path) -> None:

    done = invoke(tmp_path, "audit", "--engine", "ray", "--no-cache")
    assert done.exit_code == 2 and "--no-cache turns off" in done.output


def test_while_ray_starts_the_driver_builds_the_first_chunks_itself(tmp_path: Path) -> None:
    """The driver's early part takes files from the front until stopped; what it did not take
    is Ray's, each file exactly once; its chunks are the ones a worker writes."""
    from eval_firewall.audits import RULES
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.index import IndexStore, ray_engine

    for s in range(4):
        write_jsonl(tmp_path / f"data/train/part-{s}.jsonl", TRAIN[s * 10:s * 10 + 10])
    write_jsonl(tmp_path / "data/eval/eval.jsonl", TEST[:3])
    (tmp_path / ".eval-firewall.yml").write_text(SEARCH_CONFIG)
    config = load_config(tmp_path / ".eval-firewall.yml", rules=RULES)
    store = IndexStore(Cache(tmp_path / "cache"))
    todo = ray_engine.pending(config, config.datasets[:1], store)
    assert len(todo) == 4
    with ray_engine._staging(store) as staging:
        early = ray_engine._Early(todo, config, staging, None)
        early.thread.join()                    # never stopped: it builds them all
        assert [item for item, _ in early.done] == todo and early.stop() == []
        for (ds, _, display, key, version), result in early.done:
            ray_engine._place(store, staging, ds, display, key, version, result)
        stopped = ray_engine._Early(todo, config, staging, None)
        rest = stopped.stop()
        stopped.thread.join()
        assert [item for item, _ in stopped.done] + rest == todo
    assert ray_engine.pending(config, config.datasets[:1], store) == []


# --- the index in object storage ------------------------------------------------------------

def index_objects(prefix: str = "index") -> dict[str, bytes]:
    """Every object under ``<bucket>/<prefix>/`` by key."""
    c = client()
    found = c.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
    return {o["Key"]: c.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in found}


def with_index_location(root: Path, prefix: str = "index") -> None:
    config = (root / ".eval-firewall.yml").read_text()
    (root / ".eval-firewall.yml").write_text(
        config + f'index:\n  location: "s3://{BUCKET}/{prefix}"\n')
    git_commit(root, "the index in the bucket")


def fetched(s3: S3Server, since: int, prefix: str = "index") -> list[str]:
    """The index files GET since request ``since`` (``<chunk key>/<file>``)."""
    mark = f"/{BUCKET}/{prefix}/chunks/"
    return sorted(p[len(mark):] for m, p in s3.requests[since:] if m == "GET"
                  and p.startswith(mark))


def test_index_built_into_a_bucket_then_an_audit_fetching_only_what_it_searches(
        s3: S3Server, tmp_path: Path) -> None:
    """A trusted job builds the index into ``index.location``; a pull request's run, with an
    empty cache directory, reads no train object, fetches the chunks' files its searches use
    (each checked against its manifest) and the rows of the chunks holding a finding only."""
    upload_shards("i", TRAIN)
    root = make_repo(tmp_path, "i")
    with_index_location(root)
    clear_fs_cache()
    done = invoke(root, "index", "build", "-q", "--cache-dir", "trusted")
    assert done.exit_code == 0, done.output
    assert "8 chunk(s) built" in done.output
    assert f"8 chunk(s) published to s3://{BUCKET}/index" in done.output
    objects = index_objects()
    manifests = {k.split("/")[2]: json.loads(v) for k, v in objects.items()
                 if k.endswith("/MANIFEST.json")}
    assert len(manifests) == SHARDS
    for key, manifest in manifests.items():
        assert manifest["key"] == key and "hmac-sha256" not in manifest
        assert set(manifest["files"]) | {"MANIFEST.json"} == {
            k.split("/")[3] for k in objects if k.split("/")[2] == key}

    reads, since = s3.object_reads(f"{BUCKET}/i/"), len(s3.requests)
    code, report = audit(root, "--cache-dir", "pr")
    assert code == 1
    exact = sorted((f["line"], f["match"]["path"], f["match"]["line"])
                   for f in report["findings"] if f["rule"] == "exact-duplicate")
    assert exact == [(4, f"s3://{BUCKET}/i/shard-05.jsonl", 1),
                     (10, f"s3://{BUCKET}/i/shard-00.jsonl", 8)]
    assert s3.object_reads(f"{BUCKET}/i/") == reads         # no train object read
    got = fetched(s3, since)
    whole = [g for g in got if not g.endswith("rows.arrow")]
    assert len(whole) == len(set(whole))    # each array fetched once (the rows: by range)
    names = {g.split("/")[1] for g in got}
    norms = {n for n in names if n.startswith("lexical.norms.")}   # computed by the build
    assert len(norms) == 1 and names - norms == {
        "MANIFEST.json", "rows.arrow", "rows.blocks.npy", "norm_hash.npy", "norm_hash.order.npy",
        "lexical.features.npy", "lexical.starts.npy", "lexical.rows.npy",
        "containment.tokens.npy", "containment.starts.npy"}
    code, local = audit(root, "--cache-dir", "trusted")   # the same as the builder's cache
    assert local["findings"] == report["findings"]

    since = len(s3.requests)                # a second run of the pull request: all mirrored
    code, again = audit(root, "--cache-dir", "pr")
    assert again["findings"] == report["findings"]      # only the rows findings name, by range
    assert {g.split("/")[1] for g in fetched(s3, since)} <= {"rows.arrow"}   # (blocks: kept)
    shutil.rmtree(root / "pr/index")        # results cached, the index not (a CI cache of the
    since = len(s3.requests)                # results alone): manifests, and the rows of the
    code, cached = audit(root, "--cache-dir", "pr")         # chunks a finding names only
    assert cached["findings"] == report["findings"]
    named = {f["match"]["path"] for f in report["findings"] if f.get("match")}
    assert 0 < len(named) < SHARDS
    assert set(fetched(s3, since)) == {f"{k}/MANIFEST.json" for k in manifests} | {
        f"{k}/{name}" for k, m in manifests.items() if m["source"]["path"] in named
        for name in ("rows.arrow", "rows.blocks.npy")}
    done = invoke(root, "index", "build", "-q", "--cache-dir", "second")
    assert "0 chunk(s) built" in done.output and "0 chunk(s) published" in done.output
    assert index_objects() == objects       # nothing rebuilt, nothing written


def built_into_bucket(s3: S3Server, tmp_path: Path, prefix: str) -> tuple[Path, dict[str, dict]]:
    """A repository whose train shards (under ``prefix``) are indexed into
    ``s3://corpus/<prefix>-index`` by ``index build``; the manifests there by chunk key."""
    upload_shards(prefix, TRAIN)
    root = make_repo(tmp_path, prefix)
    with_index_location(root, f"{prefix}-index")
    clear_fs_cache()
    done = invoke(root, "index", "build", "-q", "--cache-dir", "trusted")
    assert done.exit_code == 0, done.output
    return root, {k.split("/")[2]: json.loads(v) for k, v in index_objects(f"{prefix}-index").items()
                  if k.endswith("/MANIFEST.json")}


def test_prune_location_deletes_the_chunks_no_train_file_uses_once_old_enough(
        s3: S3Server, tmp_path: Path) -> None:
    """``index build --prune-location`` deletes at the index location the chunks that no train
    file of the config uses and, in the chunks kept, the row norms their manifests dropped
    (of train sets older than the last ``NORMS_KEPT``), once written ``--prune-older-than``
    hours ago (default 24); a folder without a manifest (a publish under way) and a name
    that is no chunk's stay; an audit from an empty cache directory still finds everything."""
    from eval_firewall.index.train import NORMS_KEPT

    root, manifests = built_into_bucket(s3, tmp_path, "pu")
    replaced = next(k for k, m in manifests.items() if m["source"]["path"].endswith("shard-03.jsonl"))
    c = client()
    c.put_object(Bucket=BUCKET, Key="pu-index/chunks/partial/rows.arrow", Body=b"under way")
    c.put_object(Bucket=BUCKET, Key="pu-index/chunks/not a key/MANIFEST.json", Body=b"{}")
    versions = NORMS_KEPT          # shard 3 replaced as often: a train set (IDF) each time
    for v in range(versions):
        rows = [*TRAIN[60 + v:79], TEST[15]]
        c.put_object(Bucket=BUCKET, Key="pu/shard-03.jsonl",
                     Body="".join(json.dumps(r) + "\n" for r in rows).encode())
        clear_fs_cache()
        done = invoke(root, "index", "build", "-q", "--cache-dir", "trusted", "--prune-location")
        assert done.exit_code == 0, done.output
        assert "deleted 0 chunk(s) and 0 other file(s) there" in done.output    # too recent
    objects = index_objects("pu-index")
    assert f"pu-index/chunks/{replaced}/MANIFEST.json" in objects
    unlisted = {k for k in objects if k.split("/")[2] in manifests and k.split("/")[3] not in
                {*json.loads(objects["/".join(k.split("/")[:3]) + "/MANIFEST.json"])["files"],
                 "MANIFEST.json"}}
    assert len(unlisted) == SHARDS - 1 and all("/lexical.norms." in k for k in unlisted)

    clear_fs_cache()
    done = invoke(root, "index", "build", "-q", "--cache-dir", "trusted", "--prune-location",
                  "--prune-older-than", "0")
    assert done.exit_code == 0, done.output
    assert f"deleted {versions} chunk(s) and {SHARDS - 1} other file(s) there no train file " \
        "uses" in done.output
    objects = index_objects("pu-index")
    assert not [k for k in objects if k.startswith(f"pu-index/chunks/{replaced}/")]
    assert {"pu-index/chunks/partial/rows.arrow",
            "pu-index/chunks/not a key/MANIFEST.json"} <= set(objects)
    left = {k.split("/")[2] for k in objects if k.endswith("/MANIFEST.json")} - {"not a key"}
    assert len(left) == SHARDS and left & set(manifests) == set(manifests) - {replaced}
    for key in left:                # each kept chunk whole: what its manifest lists, no more
        listed = json.loads(objects[f"pu-index/chunks/{key}/MANIFEST.json"])["files"]
        assert {k.split("/")[3] for k in objects if k.split("/")[2] == key} == \
            {*listed, "MANIFEST.json"}
        assert len([n for n in listed if n.startswith("lexical.norms.")]) <= NORMS_KEPT

    clear_fs_cache()
    code, report = audit(root, "--cache-dir", "fresh")
    assert code == 1
    assert (16, f"s3://{BUCKET}/pu/shard-03.jsonl", 20 - versions + 1) in [
        (f["line"], f["match"]["path"], f["match"]["line"])
        for f in report["findings"] if f["rule"] == "exact-duplicate"]

    (tmp_path / "bare").mkdir()
    done = invoke(make_repo(tmp_path / "bare", "pu"), "index", "build", "--prune-location")
    assert done.exit_code == 2 and "the config does not name" in done.output
    assert ".eval-firewall.yml" in done.output and "index.location" in done.output
    assert len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output


@pytest.mark.parametrize("attack", ["changed", "truncated", "escape", "other-key", "huge",
                                    "not-json", "problems"])
def test_a_changed_or_hostile_index_in_the_bucket_is_refused_in_one_line(
        s3: S3Server, tmp_path: Path, attack: str) -> None:
    """Whoever can write the bucket is trusted as the train data is; what is read from it is
    still checked: a file must have its manifest's size and SHA-256, a manifest must name
    its own chunk and files inside it, bounded. A failure is one line, exit 2, nothing
    written outside the cache directory."""
    prefix = f"h-{attack}"
    root, manifests = built_into_bucket(s3, tmp_path, prefix)
    key = sorted(manifests)[0]
    c = client()
    where = f"{prefix}-index/chunks/{key}"
    manifest = dict(manifests[key])
    if attack == "changed":
        c.put_object(Bucket=BUCKET, Key=f"{where}/norm_hash.npy", Body=b"\x93NUMPY" + b"0" * 200)
    elif attack == "truncated":
        body = c.get_object(Bucket=BUCKET, Key=f"{where}/norm_hash.order.npy")["Body"].read()
        c.put_object(Bucket=BUCKET, Key=f"{where}/norm_hash.order.npy", Body=body[:-8])
    elif attack == "escape":
        manifest["files"] = {**manifest["files"], "../../../escape.npy": {
            "size": 3, "sha256": "0" * 64}}
    elif attack == "other-key":
        manifest["key"] = "0" * 40
    elif attack == "huge":
        manifest["files"] = {**manifest["files"], "norm_hash.npy": {
            "size": 1 << 40, "sha256": manifest["files"]["norm_hash.npy"]["sha256"]}}
    elif attack == "problems":
        manifest["problems"] = [{"dataset": "train", "path": "x", "line": "1", "message": "m",
                                 "__class__": "os.system"}]
    if attack in ("escape", "other-key", "huge", "problems"):
        c.put_object(Bucket=BUCKET, Key=f"{where}/MANIFEST.json", Body=json.dumps(manifest).encode())
    elif attack == "not-json":
        c.put_object(Bucket=BUCKET, Key=f"{where}/MANIFEST.json", Body=b"{" * 5000)
    clear_fs_cache()
    done = invoke(root, "audit", "-q", "--cache-dir", "pr")
    assert done.exit_code == 2, done.output
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.output, done.output
    assert f"index chunk {key[:12]} at s3://{BUCKET}/{prefix}-index" in lines[0]
    assert lines[0].startswith("eval-firewall: error: .eval-firewall.yml")
    assert {"changed": "failing its digest check", "truncated": "failing its digest check",
            "escape": "lists a file outside it", "other-key": "manifest of another chunk",
            "huge": "without a bounded size", "not-json": "unreadable manifest",
            "problems": "unreadable row problem"}[attack] in lines[0]
    assert not (tmp_path / "escape.npy").exists() and not (root / "escape.npy").exists()


def test_a_worker_without_the_drivers_cache_fetches_its_chunk_from_the_bucket(
        s3: S3Server, tmp_path: Path) -> None:
    """A Ray worker on a node that does not see the driver's cache directory opens a mirrored
    chunk from a private folder of its own, fetching (and checking) the files its scan maps
    from the index location: no shared filesystem is needed."""
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.index import IndexStore
    from eval_firewall.index.remote import remote_index
    from eval_firewall.search.shards import _ChunkSpec

    root, manifests = built_into_bucket(s3, tmp_path, "w")
    config = load_config(root / ".eval-firewall.yml")
    store = IndexStore(Cache(root / "driver"), remote=remote_index(config))
    key = sorted(manifests)[0]
    chunk = store.current(key, "shard")
    assert chunk is not None and not chunk.here("containment.tokens.npy")
    spec = _ChunkSpec.of(chunk)
    assert spec.remote == f"s3://{BUCKET}/w-index"
    moved = _ChunkSpec(str(tmp_path / "elsewhere" / key), spec.key, spec.manifest,
                       spec.verified, spec.remote)            # a node without that folder
    on_worker = moved.open()
    tokens = on_worker.array("containment.tokens")
    assert on_worker.directory != chunk.directory and on_worker.here("containment.tokens.npy")
    assert oct(on_worker.directory.parent.stat().st_mode & 0o777) == "0o700"
    assert tokens.tolist() == chunk.array("containment.tokens").tolist()
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.ray
def test_audit_on_ray_against_the_index_in_the_bucket(
        local_ray: object, s3: S3Server, tmp_path: Path) -> None:
    """``audit --engine ray`` with an empty cache directory: the workers fetch the arrays
    they scan from the index location; the findings are the local engine's."""
    root, manifests = built_into_bucket(s3, tmp_path, "ray-idx")
    code, by_ray = audit(root, "--engine", "ray", "--cache-dir", "pr")
    code_local, local = audit(root, "--cache-dir", "trusted")
    assert code == code_local == 1 and by_ray["findings"] == local["findings"]
    fetched_here = {p.name for p in (root / "pr/index/chunks").glob("*/*.npy")}
    assert "containment.tokens.npy" in fetched_here      # fetched by a worker, checked


def test_index_status_with_the_index_in_the_bucket(s3: S3Server, tmp_path: Path) -> None:
    """``index status`` counts a chunk at the index location as current (an audit would not
    build it) and says which chunks are published there."""
    root, manifests = built_into_bucket(s3, tmp_path, "st")
    done = invoke(root, "index", "status", "--format", "json", "--cache-dir", "empty")
    assert done.exit_code == 0, done.output
    files = json.loads(done.stdout)["files"]
    assert len(files) == SHARDS and all(f["current"] and f["published"] for f in files)
    assert sum(f["rows"] for f in files) == len(TRAIN)
    client().put_object(Bucket=BUCKET, Key="st/shard-07.jsonl",    # changed: not built, not
                        Body=(json.dumps(TRAIN[0]) + "\n").encode())  # published
    clear_fs_cache()
    done = invoke(root, "index", "status", "--cache-dir", "trusted", "--verify")
    assert done.exit_code == 1, done.output
    assert done.output.count(", published") == SHARDS - 1 and "missing" in done.output


def rows_read(s3: S3Server, since: int, name: str = "rows.arrow") -> list[tuple[int, int]]:
    """The byte ranges of the files ``name`` GET since ``since`` (each GET must name one)."""
    out = []
    for path, header in s3.ranges[since:]:
        if path.endswith(f"/{name}"):
            assert header is not None and header.startswith("bytes="), header
            first, last = header[6:].split("-")
            out.append((int(first), int(last) + 1))
    return out


def test_a_pull_request_reads_the_rows_it_needs_by_range(s3: S3Server, tmp_path: Path) -> None:
    """A chunk of 30,000 rows at the index location: a pull request's run with an empty cache
    reads the rows its candidates and findings need as checked ranges of the rows file, each
    block once, and with its results cached only the blocks of the rows its findings name;
    the findings are those of the builder's cache."""
    base = gsm8k("train")
    rows = [dict(r, question=f"{r['question']} (variant {k})" if k else r["question"])
            for k in range(4) for r in base][:30000]
    c = client()
    try:
        c.create_bucket(Bucket=BUCKET)
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    c.put_object(Bucket=BUCKET, Key="big/shard-00.jsonl",
                 Body="".join(json.dumps(r) + "\n" for r in rows).encode())
    git_init(tmp_path)
    evals = [dict(r) for r in TEST]
    evals[3]["question"] = rows[23100]["question"]
    evals[9]["question"] = rows[17]["question"].replace(".", ",", 1)
    write_jsonl(tmp_path / "data/eval/eval.jsonl", evals)
    (tmp_path / ".eval-firewall.yml").write_text(CONFIG.replace("/train/", "/big/"))
    git_commit(tmp_path, "base")
    with_index_location(tmp_path, "big-index")
    clear_fs_cache()
    assert invoke(tmp_path, "index", "build", "-q", "--cache-dir", "trusted").exit_code == 0
    size = sum(o["Size"] for o in c.list_objects_v2(Bucket=BUCKET, Prefix="big-index/")[
        "Contents"] if o["Key"].endswith("/rows.arrow"))
    since = len(s3.ranges)
    code, report = audit(tmp_path, "--cache-dir", "pr")
    code_trusted, trusted = audit(tmp_path, "--cache-dir", "trusted")
    assert code == code_trusted == 1 and report["findings"] == trusted["findings"]
    assert {(f["line"], f["match"]["line"]) for f in report["findings"]
            if f["rule"] in ("exact-duplicate", "near-duplicate")} == {(4, 23101), (10, 18)}
    spans = rows_read(s3, since)
    assert spans and len(set(spans)) == len(spans) and sum(b - a for a, b in spans) < size
    assert all(b - a <= 1 << 15 for a, b in spans)

    shutil.rmtree(tmp_path / "pr/index")       # results cached, the index not
    since = len(s3.ranges)
    code, again = audit(tmp_path, "--cache-dir", "pr")
    assert again["findings"] == report["findings"]
    assert 0 < sum(b - a for a, b in rows_read(s3, since)) < size / 4


def test_a_worker_without_a_shared_filesystem_uploads_its_chunk_to_the_index_location(
        s3: S3Server, tmp_path: Path) -> None:
    """``index build --engine ray`` where a worker does not see the driver's staging
    directory: the worker writes the chunk's files to the index location itself, the driver
    writes the manifest there and mirrors it; the chunk is the local engine's, file for file."""
    from eval_firewall.cache import Cache
    from eval_firewall.config import load_config
    from eval_firewall.index import IndexStore
    from eval_firewall.index.ray_engine import _compute, _place, pending
    from eval_firewall.index.remote import remote_index

    upload_shards("u", TRAIN)
    root = make_repo(tmp_path, "u")
    with_index_location(root, "u-index")
    clear_fs_cache()
    config = load_config(root / ".eval-firewall.yml")
    store = IndexStore(Cache(root / "driver"), remote=remote_index(config))
    todo = pending(config, config.datasets_with_role("train"), store)
    assert len(todo) == SHARDS
    ds, source, display, key, version = todo[0]
    result = _compute(config, ds, source, display, ("/nowhere/shared", "token"), None, key)
    assert result["uploaded"] and "staged" not in result
    assert index_objects("u-index") and not any(
        k.endswith("MANIFEST.json") for k in index_objects("u-index"))   # not yet a chunk
    _place(store, ("/nowhere/shared", "token"), ds, display, key, version, result)
    mirrored = store.current(key, display)
    assert mirrored is not None and mirrored.manifest.get("mirror") and store.built == 1
    local = IndexStore(Cache(root / "local")).load_remote(config, ds, source)
    assert {n: m["sha256"] for n, m in mirrored.manifest["files"].items()} == {
        n: m["sha256"] for n, m in local.manifest["files"].items()}
    assert mirrored.table().to_pylist() == local.table().to_pylist()   # fetched, checked
