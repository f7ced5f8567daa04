"""The action's inputs and the runner's environment, parsed once into a typed object.

GitHub passes each input of a Docker action as ``INPUT_<NAME>``: the name upper-cased with
hyphens kept (``INPUT_GITHUB-TOKEN``). Everything else comes from the ``GITHUB_*`` variables
the runner sets for every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from ..errors import UserError

CommentMode = Literal["always", "on-findings", "never"]
FailOn = Literal["error", "warning", "notice", "never"]

# input name -> (field, default). Defaults match action.yml.
INPUTS = {
    "github-token": ("token", ""),
    "config": ("config", ".eval-firewall.yml"),
    "fail-on": ("fail_on", ""),
    "comment": ("comment", "on-findings"),
    "check-name": ("check_name", "eval-firewall"),
    "report-dir": ("report_dir", "eval-firewall-report"),
    "cache-dir": ("cache_dir", ".eval-firewall-cache"),
    "post": ("post", "true"),
    "policy": ("policy", ""),
    "max-limits": ("max_limits", ""),
    "model-path": ("model_path", ""),
}


class Settings(BaseModel):
    """Inputs (from ``INPUT_*``) and runner context (from ``GITHUB_*``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr                 # never printed: SecretStr hides it in repr and errors
    config: str
    fail_on: FailOn | None
    comment: CommentMode
    check_name: str
    report_dir: str
    cache_dir: str | None
    post: bool                       # false: audit and save the report only (fork step one)
    policy: str | None               # a trusted policy file, read from the base commit
    max_limits: dict[str, int]       # the limits' ceiling (bytes, counts) by limit name
    model_path: Path | None = None   # the semantic model's directory, outside the checkout

    event_name: str
    event_path: Path
    repository: str                  # owner/name
    workspace: Path
    sha: str | None
    api_url: str
    server_url: str
    step_summary: Path | None
    output: Path | None
    run_id: str | None

    @property
    def run_url(self) -> str | None:
        """The page of this workflow run, when the runner says which run it is."""
        if not self.run_id:
            return None
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"

    def in_workspace(self, path: str) -> Path:
        """An input's path, relative to the workspace unless absolute."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.workspace / candidate


def read_input(env: Mapping[str, str], name: str) -> str:
    """An input as the runner passes it; ``""`` when unset. Surrounding space is ignored."""
    return env.get(f"INPUT_{name.upper()}", "").strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise UserError(f"environment variable {name} is not set; `eval-firewall github` runs "
                        "inside GitHub Actions (use `eval-firewall audit` elsewhere)")
    return value


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name, "").strip()
    return Path(value) if value else None


def load_settings(env: Mapping[str, str]) -> Settings:
    """The settings from the runner's environment; one line naming a bad input."""
    values: dict[str, object] = {}
    for name, (field, default) in INPUTS.items():
        values[field] = read_input(env, name) or default
    if not values["token"]:
        values["token"] = env.get("GITHUB_TOKEN", "")
    values["fail_on"] = values["fail_on"] or None
    values["cache_dir"] = values["cache_dir"] or None
    values["policy"] = values["policy"] or None
    from ..policy.load import parse_ceiling
    values["max_limits"] = parse_ceiling(str(values["max_limits"]), "max-limits")
    post = str(values["post"]).lower()
    if post not in ("true", "false"):
        raise UserError(f"invalid input: must be true or false (got {values['post']!r})",
                        field="post")
    values["post"] = post == "true"
    workspace = Path(env.get("GITHUB_WORKSPACE", "").strip() or ".").resolve()
    values["model_path"] = _model_path(str(values["model_path"]), workspace)
    repository = _required(env, "GITHUB_REPOSITORY")
    if repository.count("/") != 1:
        raise UserError(f"GITHUB_REPOSITORY must be owner/name (got {repository!r})")
    server = env.get("GITHUB_SERVER_URL", "").strip() or "https://github.com"
    values.update(
        event_name=_required(env, "GITHUB_EVENT_NAME"),
        event_path=Path(_required(env, "GITHUB_EVENT_PATH")),
        repository=repository,
        workspace=workspace,
        sha=env.get("GITHUB_SHA", "").strip() or None,
        api_url=(env.get("GITHUB_API_URL", "").strip() or "https://api.github.com").rstrip("/"),
        server_url=server.rstrip("/"),
        step_summary=_optional_path(env, "GITHUB_STEP_SUMMARY"),
        output=_optional_path(env, "GITHUB_OUTPUT"),
        run_id=env.get("GITHUB_RUN_ID", "").strip() or None,
    )
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0])
        name = next((n for n, (f, _) in INPUTS.items() if f == field), field)
        got = "" if field == "token" else f" (got {err.get('input')!r})"
        raise UserError(f"invalid input: {err['msg']}{got}", field=name) from None


def _model_path(value: str, workspace: Path) -> Path | None:
    """The ``model-path`` input: an absolute directory outside the workspace (the files in the
    checkout are the pull request's), or None."""
    if not value.strip():
        return None
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        raise UserError("invalid input: must be an absolute path to a model directory outside "
                        f"the workspace (got {value!r})", field="model-path")
    real = path.resolve()
    if real == workspace or workspace in real.parents:
        raise UserError("invalid input: the model directory is inside the workspace, whose "
                        "files are the pull request's; keep the model outside it (e.g. under "
                        "$RUNNER_TEMP)", field="model-path")
    return real
