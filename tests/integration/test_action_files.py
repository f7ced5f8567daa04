"""The action's files: Dockerfile lint, action.yml and the README's workflows against GitHub's
schemas (check-jsonschema's vendored copies: no network), and inputs/outputs kept in sync."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from eval_firewall.github.settings import INPUTS

BIN = Path(sys.executable).parent
# Any attempt to reach the network fails fast: the checks must work offline.
OFFLINE = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": ""}


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=cwd, env=OFFLINE,
                          capture_output=True, text=True, timeout=120)


def action() -> dict:
    return yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))


def readme_section(name: str) -> str:
    """The docs pages of the action: its workflows, inputs and outputs, and the fork set-up."""
    return "\n".join((ROOT / "docs" / "action" / page).read_text(encoding="utf-8")
                     for page in ("index.md", "forks.md"))


OWNER = "eval-firewall"   # as in the README's `uses: eval-firewall/eval-firewall@v1`
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def readme_workflows() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", readme_section("action"), re.S)
    return [b for b in blocks if re.search(r"^on:", b, re.M)]


def test_dockerfile_passes_hadolint(tmp_path):
    done = _run("hadolint", "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and hadolint really checks: a sloppy Dockerfile fails.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install git\nRUN pip install torch\n")
    done = _run("hadolint", str(bad))
    assert done.returncode != 0 and "DL3006" in done.stdout and "DL3013" in done.stdout


def test_dockerfile_bakes_the_model_in_and_runs_the_action():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    # The release's base by default; another one (build-here.sh: mmdebstrap) by build argument.
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm" in text
    assert re.search(r"^FROM \$\{BASE_IMAGE\} AS base$", text, re.M)
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in text
    assert '${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0' in text
    assert '".[torch]"' in text and "HF_HUB_OFFLINE=1" in text
    assert 'ENTRYPOINT ["eval-firewall", "github"]' in text
    # The ONNX export and the static model are made in the builder stage into a read-only
    # search path, never into the per-user home (which holds the cache's signing key and must
    # stay empty in a public image); the final stage copies them and installs nothing: no torch.
    assert "ENV EVAL_FIREWALL_MODELS=/opt/eval-firewall/models" in text
    assert "&& python -m eval_firewall.embeddings /opt/eval-firewall/models" in text
    final = text.rsplit("\nFROM ", 1)[1]
    assert final.startswith("base\n") and "pip install" not in final
    assert "COPY --from=builder /opt/eval-firewall/models /opt/eval-firewall/models" in final
    assert "COPY --from=venv /opt/venv /opt/venv" in final
    assert "EVAL_FIREWALL_HOME" not in text and "XDG_CACHE_HOME" not in text
    assert not re.search(r"^USER ", text, re.M)     # GitHub: Docker actions run as root
    # Everything COPY needs survives .dockerignore, and exists.
    kept = [l[1:].rstrip("/") for l in (ROOT / ".dockerignore").read_text().splitlines()
            if l.startswith("!")]
    for line in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in line.split():
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") in kept, f"{source} is excluded by .dockerignore"
    # The pins cover the runtime dependencies the package declares.
    pins = {l.split("==")[0] for l in (ROOT / "docker/constraints.txt").read_text().splitlines()
            if "==" in l}
    import tomllib
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in deps}
    assert names <= pins, f"not pinned in docker/constraints.txt: {sorted(names - pins)}"


def test_action_yml_matches_the_github_actions_schema():
    done = _run("check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    spec = action()
    # The prebuilt image the release workflow publishes, not a build on every run.
    assert spec["runs"] == {"using": "docker",
                            "image": f"docker://ghcr.io/{OWNER}/eval-firewall:v1"}


def test_action_inputs_are_the_ones_the_code_reads():
    inputs = action()["inputs"]
    assert set(inputs) == set(INPUTS)
    for name, (_, default) in INPUTS.items():
        expected = "${{ github.token }}" if name == "github-token" else default
        assert str(inputs[name].get("default", "")) == expected, name
    for name in ("github-token", "config", "fail-on", "comment", "check-name"):
        assert name in inputs


def test_readme_documents_every_input_and_output():
    section = readme_section("action")
    spec = action()
    for name in [*spec["inputs"], *spec["outputs"]]:
        assert f"| `{name}` |" in section, name
    for name in ("status", "findings", "new-findings", "report-path"):
        assert name in spec["outputs"]


def test_readme_workflows_match_the_github_workflows_schema(tmp_path):
    workflows = readme_workflows()
    assert len(workflows) == 3     # the main workflow and the two of the fork set-up
    paths = []
    for i, text in enumerate(workflows):
        path = tmp_path / f"workflow{i}.yml"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    done = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *paths)
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and the schema really checks: a workflow with a typo fails.
    broken = tmp_path / "broken.yml"
    broken.write_text(workflows[0].replace("runs-on:", "run-on:"), encoding="utf-8")
    done = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken))
    assert done.returncode == 1


def test_readme_quick_start_workflow_is_the_documented_one():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    [workflow] = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if re.search(r"^on:", b, re.M)]
    assert workflow == readme_workflows()[0]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_readme_workflows_use_the_action_as_documented(index):
    workflow = yaml.safe_load(readme_workflows()[index])
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = [s.get("uses", "") for s in steps]          # a `run:` step has none
    assert "eval-firewall/eval-firewall@v1" in uses
    ours = next(s for s in steps if s.get("uses", "").startswith("eval-firewall/"))
    assert set(ours.get("with", {})) <= set(action()["inputs"])
    events = workflow[True] if True in workflow else workflow["on"]   # YAML 1.1: on == True
    if "workflow_run" in events:
        assert not any(u.startswith("actions/checkout") for u in uses)  # nothing from the PR
        assert workflow["permissions"]["actions"] == "read"
    else:
        checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout"))
        assert checkout["with"]["fetch-depth"] == 2


def test_every_workflow_file_matches_the_github_workflows_schema(tmp_path):
    assert "release.yml" in [p.name for p in WORKFLOWS]
    done = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                *map(str, WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and the schema really checks each of them: a misspelt key fails.
    for path in WORKFLOWS:
        broken = tmp_path / path.name
        broken.write_text(path.read_text().replace("runs-on:", "run-on:"), encoding="utf-8")
        done = _run("check-jsonschema", "--builtin-schema", "vendor.github-workflows",
                    str(broken))
        assert done.returncode == 1, path.name


def release() -> dict:
    return yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text(encoding="utf-8"))


def release_steps() -> list[dict]:
    [job] = release()["jobs"].values()
    return job["steps"]


def test_release_runs_on_version_tags_but_not_on_the_major_tag_it_moves():
    import fnmatch
    workflow = release()
    events = workflow[True] if True in workflow else workflow["on"]
    patterns = events["push"]["tags"]
    assert set(events) == {"push"}
    assert any(fnmatch.fnmatchcase("v1.2.3", p) for p in patterns)
    assert not any(fnmatch.fnmatchcase("v1", p) for p in patterns)
    assert workflow["permissions"] == {"contents": "write", "packages": "write"}


def test_release_names_the_image_and_tags_from_the_pushed_tag(tmp_path):
    """The step that names the image runs as GitHub runs it: bash, GITHUB_* in, GITHUB_OUTPUT out."""
    names = next(s for s in release_steps() if s.get("id") == "names")
    output = tmp_path / "output"
    env = {"PATH": os.environ["PATH"], "GITHUB_REF_NAME": "v1.4.2",
           "GITHUB_REPOSITORY": "Eval-Firewall/eval-firewall", "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-e", "-c", names["run"]], env=env, check=True)
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert values == {"version": "v1.4.2", "major": "v1",
                      "image": "ghcr.io/eval-firewall/eval-firewall"}
    # The image action.yml runs is the one this workflow pushes under the major tag.
    assert action()["runs"]["image"] == f"docker://{values['image']}:{values['major']}"


def test_release_builds_smoke_tests_then_pushes_and_moves_the_major_tag():
    steps = release_steps()
    uses = [s.get("uses", "") for s in steps]
    login = steps[next(i for i, u in enumerate(uses) if u.startswith("docker/login-action@"))]
    assert login["with"]["registry"] == "ghcr.io"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    build_at = next(i for i, u in enumerate(uses) if u.startswith("docker/build-push-action@"))
    build = steps[build_at]["with"]
    assert build["context"] == "." and build["load"] is True and build["push"] is False
    image = "${{ steps.names.outputs.image }}"
    assert build["tags"].splitlines() == [f"{image}:${{{{ steps.names.outputs.version }}}}",
                                          f"{image}:${{{{ steps.names.outputs.major }}}}"]
    order = [s.get("name") for s in steps]
    smoke, push, move = (order.index(n) for n in ("Smoke test", "Push", "Move the major tag"))
    assert build_at < smoke < push < move       # nothing is pushed before the smoke test passes
    assert "--entrypoint eval-firewall" in steps[smoke]["run"] and "--version" in steps[smoke]["run"]
    assert 'docker push "$IMAGE:$MAJOR"' in steps[push]["run"]
    assert 'git tag -f "$MAJOR"' in steps[move]["run"]
    assert 'git push -f origin "refs/tags/$MAJOR"' in steps[move]["run"]
    # Every step's shell script parses.
    for step in steps:
        if "run" in step:
            assert subprocess.run(["bash", "-n", "-c", step["run"]]).returncode == 0, step
