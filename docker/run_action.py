"""Run the action's image end to end as GitHub runs a Docker action, against the local
GitHub-compatible server (tests/github_server.py), and check what it did.

    python docker/run_action.py IMAGE

Like the runner: `docker run --workdir /github/workspace` with the checkout mounted there and
owned by another user (the runner's uid, not the container's root), the event payload and the
GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files mounted from the runner's temporary folders, HOME at
/github/home, the inputs as INPUT_* variables. The server listens on 127.0.0.1, so the container
shares the host's network. The pull request adds two copies of train rows and a reworded train
question, with the paraphrase search on (the full model runs, on ONNX Runtime): the run must
fail, post one comment, fail the check with annotations on the leaked lines and write its
outputs and report. Prints one line per check and the wall time; exits non-zero on a miss.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

import action_harness  # noqa: E402
from action_harness import (  # noqa: E402
    EVAL,
    REPO,
    TOKEN,
    TRAIN_ROWS,
    leak_lines,
    leaks,
    open_pr,
    parse_outputs,
)
from github_server import GitHubServer  # noqa: E402
from s3_server import S3Server  # noqa: E402

RUNNER_UID = 1001      # GitHub's runner user; the container runs as root
PARAPHRASE = {"question": "Natalia sold clips to 48 friends in April; in May she sold half as "
                          "many. How many clips did she sell in the two months together?",
              "answer": "72"}
REMOTE = "s3://corpus/train/shard-*.jsonl"     # the second run's train set, in the local S3


def main(image: str) -> int:
    server = GitHubServer().start()
    server.add_repo(REPO)
    server.add_token(TOKEN, "github-actions[bot]", app=True)
    s3 = S3Server()
    config = action_harness.CONFIG
    try:
        with tempfile.TemporaryDirectory() as tmp:
            action_harness.CONFIG = config.replace("semantic: {enabled: false}",
                                                   "semantic: {enabled: true}")
            code = run(image, Path(tmp) / "local", server)
            action_harness.CONFIG = config.replace('"data/train/*.jsonl"', f'"{REMOTE}"')
            return code | run_remote(image, Path(tmp) / "remote", server, s3)
    finally:
        action_harness.CONFIG = config
        s3.stop()
        server.stop()


def run(image: str, tmp: Path, server: GitHubServer) -> int:
    """The train set in the repository, a paraphrase among the leaks (the full model runs)."""
    ws, base, head, merge, payload = open_pr(tmp, server, leaks(0, 1) + [PARAPHRASE])
    done, outputs, summary, seconds = docker_run(image, tmp, server, ws, merge, payload)
    ours = comments(server, 7)
    check = checks(server)
    report = ws / outputs.get("report-path", "missing")
    return verdict(done, seconds, {
        "exit code 1 (the check fails)": done.returncode == 1,
        "one comment, with the verdict": len(ours) == 1 and "leaked" in ours[0]["body"],
        "a paraphrase found by the full model": "paraphrase" in (ours[0]["body"] if ours else ""),
        "check run failed on the head commit": (check.get("head_sha"), check.get("conclusion"))
        == (head, "failure"),
        "annotations on the leaked lines": set(leak_lines(2)) <= {
            a["start_line"] for a in check.get("_annotations", []) if a["path"] == EVAL},
        "outputs written": outputs.get("status") == "fail" and outputs.get("findings") == "3",
        "report written in the workspace": report.is_file(),
        "step summary written": summary.read_text(encoding="utf-8").startswith("**"),
    })


def run_remote(image: str, tmp: Path, server: GitHubServer, s3: S3Server) -> int:
    """The train set in an S3 bucket (the local S3 server), read through s3fs in the image:
    the same leaks found, their train rows named by URL."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="corpus")
    half = len(TRAIN_ROWS) // 2
    for i, rows in enumerate((TRAIN_ROWS[:half], TRAIN_ROWS[half:])):
        client.put_object(Bucket="corpus", Key=f"train/shard-{i}.jsonl",
                          Body="".join(json.dumps(r) + "\n" for r in rows).encode())
    ws, base, head, merge, payload = open_pr(tmp, server, leaks(0, half), number=8)
    done, outputs, _, seconds = docker_run(image, tmp, server, ws, merge, payload, s3.env)
    body = (comments(server, 8) or [{"body": ""}])[0]["body"]
    return verdict(done, seconds, {
        "train set in S3: exit code 1": done.returncode == 1,
        "train set in S3: both leaks found": outputs.get("findings") == "2",
        "train set in S3: both shards read": s3.object_reads("corpus/train/") == 2,
        # the comment escapes the URL (no autolink): s3:<ZWSP>//corpus/train/shard\-1.jsonl
        "train set in S3: train rows named by URL, not linked":
        "//corpus/train/shard\\-1.jsonl:1" in body and "](s3:" not in body,
    })


def docker_run(image: str, tmp: Path, server: GitHubServer, ws: Path, merge: str,
               payload: dict, extra: dict[str, str] | None = None) -> tuple:
    """``docker run`` as the runner does; returns the run, its outputs, the step summary's
    file and the wall time."""
    workflow, commands, home = tmp / "_github_workflow", tmp / "_runner_file_commands", tmp / "home"
    for folder in (workflow, commands, home):
        folder.mkdir()
    (workflow / "event.json").write_text(json.dumps(payload), encoding="utf-8")
    output, summary = commands / "set_output_1", commands / "step_summary_1"
    for file in (output, summary):
        file.write_text("", encoding="utf-8")
    for path in (ws, workflow, commands, home):
        subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(path)], check=True)
    env = {"HOME": "/github/home", "GITHUB_ACTIONS": "true", "CI": "true",
           "GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/github/workflow/event.json",
           "GITHUB_REPOSITORY": REPO, "GITHUB_REPOSITORY_OWNER": REPO.split("/")[0],
           "GITHUB_WORKSPACE": "/github/workspace", "GITHUB_SHA": merge,
           "GITHUB_API_URL": server.api_url, "GITHUB_SERVER_URL": server.server_url,
           "GITHUB_OUTPUT": "/github/file_commands/set_output_1",
           "GITHUB_STEP_SUMMARY": "/github/file_commands/step_summary_1",
           "GITHUB_RUN_ID": "4242", "GITHUB_TOKEN": TOKEN, "INPUT_GITHUB-TOKEN": TOKEN,
           "INPUT_CONFIG": ".eval-firewall.yml", "INPUT_COMMENT": "on-findings",
           "INPUT_CHECK-NAME": "eval-firewall", "INPUT_FAIL-ON": "",
           "INPUT_REPORT-DIR": "eval-firewall-report", "INPUT_CACHE-DIR": ".eval-firewall-cache",
           **(extra or {})}
    argv = ["docker", "run", "--rm", "--network", "host", "--workdir", "/github/workspace",
            "-v", f"{home}:/github/home", "-v", f"{workflow}:/github/workflow",
            "-v", f"{commands}:/github/file_commands", "-v", f"{ws}:/github/workspace"]
    for name in env:
        argv += ["-e", name]
    started = time.perf_counter()
    done = subprocess.run([*argv, image], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=600)
    seconds = time.perf_counter() - started
    sys.stderr.write(done.stderr)
    return done, parse_outputs(output.read_text(encoding="utf-8")), summary, seconds


def comments(server: GitHubServer, number: int) -> list[dict]:
    return [c for c in server.comments_on(REPO, number)
            if c["user"]["login"] == "github-actions[bot]"]


def checks(server: GitHubServer) -> dict:
    runs = list(server.state.check_runs.values())
    return runs[-1] if runs else {}


def verdict(done: subprocess.CompletedProcess, seconds: float, results: dict[str, bool]) -> int:
    """One line per check (and the ones every run must pass), the wall time; 1 on a miss."""
    results |= {"token never printed": TOKEN not in done.stdout + done.stderr,
                "no traceback": "Traceback" not in done.stderr}
    for what, ok in results.items():
        print(f"{'ok  ' if ok else 'MISS'} {what}")
    print(f"the action ran in {seconds:.1f} s (docker run, wall)")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docker/run_action.py IMAGE")
    sys.exit(main(sys.argv[1]))
