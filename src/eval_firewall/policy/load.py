"""The policy a run applies, read from git: the base revision's config and waivers, compared
with the head's, plus the trusted overrides (the action's ``policy`` file and ``max-limits``).

The I/O around :mod:`.diff` and :mod:`.effective`: this module reads files; they decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field, ValidationError

from ..config import Config, LimitsConfig, parse_config, resolve_paths
from ..errors import UserError, validation_error
from ..findings import PolicyChange, Report
from ..incremental.git import Git
from ..rules import Rule
from ..safeio.read import read_committed
from ..safeio.yaml import MAX_CONFIG_BYTES, MAX_CONFIG_YAML_NODES, load_yaml, yaml_error
from . import effective
from .diff import diff_configs, diff_new_policy, diff_waivers
from .effective import Approvals
from .waivers import WAIVERS_FILE, Listed, parse_waivers

# Asked with the files whose loosenings need approval (paths as the diff names them).
ApprovalSource = Callable[[Sequence[str]], Approvals]


@dataclass(frozen=True, slots=True)
class Trusted:
    """Overrides from a trusted source: a policy file's keys, and the limits' ceiling."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    ceiling: Mapping[str, int] = field(default_factory=dict)
    ceiling_source: str = "max-limits"


@dataclass(frozen=True, slots=True)
class Gate:
    """The config and waivers a run applies, and the policy changes it reports."""

    config: Config
    waivers: list[Listed] | None        # None: the engine reads them (no policy comparison)
    changes: list[PolicyChange]
    new_policy: bool = False
    approvals: Approvals | None = None
    notes: list[str] = field(default_factory=list)   # limits capped at the ceiling

    @property
    def compared(self) -> bool:
        """Whether the head's policy was compared with a base's (or found to be new)."""
        return self.waivers is not None or self.new_policy

    def finish(self, report: Report, rules: Mapping[str, Rule]) -> Report:
        """The report with the policy's result (its findings at the severity the run's config
        gives them) and its changes."""
        from ..engine import apply_severity

        if not self.compared:
            return report
        outcome = apply_severity(self.config, effective.result(self.changes, self.approvals),
                                 rules)
        return effective.attach(report, outcome, self.changes, self.new_policy)


def _top_relative(git: Git, path: Path) -> str:
    """The path inside the repository, as git names it: its folder resolved, not the file
    itself (it may be a link the pull request committed; the base's file is read by name)."""
    try:
        return (path.parent.resolve() / path.name).relative_to(git.top).as_posix()
    except ValueError:
        raise UserError("the config is outside the git repository, so its base revision "
                        "cannot be read", path=str(path)) from None


def _text(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("the file is not UTF-8", path=source) from None


def config_path(config: Config) -> Path:
    """The config file's path on disk."""
    source = Path(config.source)
    return source if source.is_absolute() else config.root / source


def waiver_path(config: Config) -> tuple[Path, str]:
    """The waiver file next to the config: its path and its name in messages."""
    display = (Path(config.source).parent / WAIVERS_FILE).as_posix()
    return config.root / display, display


def base_config(git: Git, sha: str, head: Config) -> Config | None:
    """The config as the base commit has it (its path as the head's); None: it has none."""
    raw = git.read_at(sha, _top_relative(git, config_path(head)), MAX_CONFIG_BYTES)
    if raw is None:
        return None
    source = f"{head.source} (at the base, {sha[:7]})"
    config = parse_config(_text(raw, source), source=source, root=head.root)
    return config.model_copy(update={"source": head.source})


def base_waivers(git: Git, sha: str, head: Config, config: Config) -> list[Listed]:
    """The waivers at the base: its waiver file's, then its config's ``waivers:``."""
    path, display = waiver_path(head)
    raw = git.read_at(sha, _top_relative(git, path), MAX_CONFIG_BYTES)
    listed = [] if raw is None else parse_waivers(_text(raw, display), source=display)
    return listed + [Listed(e, head.source) for e in config.waivers]


def read_overrides(text: str, source: str) -> dict[str, Any]:
    """A trusted policy file: a YAML mapping of policy keys (``fail_on``, ``severity``,
    ``audits``, ``limits``...)."""
    loader = yaml.SafeLoader(text)
    try:
        data = load_yaml(loader, MAX_CONFIG_YAML_NODES)
    except (yaml.YAMLError, ValueError) as exc:
        raise yaml_error(exc, source) from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError("a policy file is a mapping of config keys", path=source, line=1)
    return data


def trusted_file(git: Git, sha: str | None, path: str, workspace: Path) -> dict[str, Any]:
    """The action's ``policy`` file, from the base commit (``sha``), or from the checkout when
    there is no base (the first push of a branch)."""
    if sha is None:
        file = workspace / path
        if file.is_symlink():        # as at a commit (Git.read_at): policy is a regular file
            raise UserError(f"{path} is not a regular file", path=path, field="policy")
        if file.is_file():
            text = read_committed(file, MAX_CONFIG_BYTES, what="policy file", display=path)
            return read_overrides(text, path)
        raw = None
    else:
        raw = git.read_at(sha, _top_relative(git, workspace / path), MAX_CONFIG_BYTES)
    where = f" at the base commit {sha[:7]}" if sha else ""
    if raw is None:
        raise UserError(f"the policy file does not exist{where}", path=path, field="policy")
    return read_overrides(_text(raw, path), path)


class _Ceiling(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: ByteSize | None = Field(default=None, gt=0)
    max_row_bytes: ByteSize | None = Field(default=None, gt=0)
    max_json_depth: int | None = Field(default=None, ge=1)
    max_files_per_glob: int | None = Field(default=None, ge=1)
    max_yaml_nodes: int | None = Field(default=None, ge=1)


def parse_ceiling(text: str, source: str = "max-limits") -> dict[str, int]:
    """The ``max-limits`` input: a YAML mapping of limits (``{max_file_bytes: 1GiB}``)."""
    if not text.strip():
        return {}
    data = read_overrides(text, source)
    try:
        ceiling = _Ceiling.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path=source, prefix="invalid input: ") from None
    return {k: int(v) for k, v in ceiling.model_dump().items() if v is not None}


def _load_head_waivers(config: Config) -> list[Listed]:
    from ..engine import load_waivers  # the engine reads the head's files, contained
    return load_waivers(config)


def gate(head: Config, base: str | None, *, rules: Mapping[str, Rule],
         approvals: ApprovalSource | None = None, trust_head: bool = False,
         trusted: Trusted | None = None) -> Gate:
    """The policy for a run of ``head``'s config compared with revision ``base``.

    Without ``base`` the head's config applies (a local run, or a branch's first push). With
    it, the base's config and waivers are the policy; the head's changes to them apply when
    they tighten, and when they loosen only once ``approvals`` says who approved them (or
    with ``trust_head``). No config at the base: the head's is new policy.
    """
    trusted = trusted or Trusted()
    if trusted.overrides:
        head = effective.overlay(head, trusted.overrides, trusted.source)
    if base is None:
        return _capped(Gate(head, None, []), trusted)
    git = Git.containing(head.root)
    sha = git.resolve(base)
    old = base_config(git, sha, head)
    if old is None:       # new policy: the head's config applies, its limits no higher than
        if not trusted.ceiling:                                         # the defaults' (or max-limits)
            trusted = Trusted(trusted.overrides, trusted.source, LimitsConfig().model_dump(),
                              "the default: no config at the base sets a higher one")
        head, remote, approved = _new_remote(head, approvals, trust_head)
        return _capped(Gate(head, None, remote, new_policy=True, approvals=approved), trusted)
    if trusted.overrides:
        old = effective.overlay(old, trusted.overrides, trusted.source)
    new_waivers = _load_head_waivers(head)     # the pull request's: refused first if hostile
    old_waivers = base_waivers(git, sha, head, old)
    changes = diff_configs(old, head, rules) + diff_waivers(old_waivers, new_waivers)
    asked = sorted({c.path for c in changes if c.direction == "loosen"})
    approved = approvals(asked) if approvals is not None and asked and not trust_head else None
    decided = effective.decide(changes, approved, trusted=trust_head)
    config = _without_missing(effective.effective_config(old, head, decided), decided)
    waivers = effective.effective_waivers(old_waivers, new_waivers, decided)
    return _capped(Gate(config, waivers, decided, approvals=approved), trusted)


def _new_remote(head: Config, approvals: ApprovalSource | None, trust_head: bool
                ) -> tuple[Config, list[PolicyChange], Approvals | None]:
    """A config new on this change is its policy, but the remote locations it names are not
    (a pull request must not make the run fetch a URL of its choosing): each train dataset
    with a URL, and ``index.location``, is a loosening, pending (and left out of the run)
    until approved."""
    changes = diff_new_policy(head)
    if not changes:
        return head, [], None
    asked = sorted({c.path for c in changes})
    approved = approvals(asked) if approvals is not None and not trust_head else None
    decided = effective.decide(changes, approved, trusted=trust_head)
    held = {c.key for c in decided if c.status == "pending"}
    if held:
        head = head.model_copy(update={
            "datasets": [d for d in head.datasets if f"datasets[{d.name}]" not in held],
            **({"index": head.index.model_copy(update={"location": None})}
               if "index.location" in held else {})})
    return head, decided, approved


def _without_missing(config: Config, decided: Sequence[PolicyChange]) -> Config:
    """A dataset the pull request removed stays in the policy until the removal is approved;
    if it also removed the dataset's files, there is nothing left to audit of it (the pending
    removal still fails the run)."""
    kept_back = {c.key[len("datasets["):-1] for c in decided
                 if c.status == "pending" and c.key.startswith("datasets[") and c.key.endswith("]")
                 and c.after == "removed"}
    keep = []
    for ds in config.datasets:
        if ds.name in kept_back:
            try:
                resolve_paths(config, ds)
            except UserError:
                continue
        keep.append(ds)
    if len(keep) == len(config.datasets):
        return config
    return config.model_copy(update={"datasets": keep})


def _capped(g: Gate, trusted: Trusted) -> Gate:
    if not trusted.ceiling:
        return g
    config, notes = effective.cap_limits(g.config, trusted.ceiling, trusted.ceiling_source)
    return Gate(config, g.waivers, g.changes, g.new_policy, g.approvals, notes)
