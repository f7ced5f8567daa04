"""Model predictions for the invariance audit: the prompts file, the predictions file, and the
prediction command.

The prompts file (written by ``eval-firewall perturb`` and handed to a prediction command) is
JSONL, one prompt a line: ``{"id", "row_id", "kind", "prompt", "sha"}``. A predictions file is
JSONL too: ``{"id": ..., "prediction": ...}`` a line, optionally echoing the prompt's ``sha`` so
that a prediction made for an older prompt is noticed.

Threat model of the prediction command: the command comes from the configuration, so whoever
can change the configuration can run code wherever the audit runs. It is therefore run only
when the caller allows it (``run_audits(..., allow_commands=True)``; ``eval-firewall audit
--allow-command``). The GitHub Action never allows it for pull requests (their configuration,
and any script the command would start, are the pull request author's), and so never for fork
pull requests; it may on pushes to the base branch, whose configuration is trusted. A pull
request can still ship a predictions *file*: that is data, read, never executed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..config import Config, LimitsConfig
from ..datasets.fields import shown
from ..datasets.jsonl import parse_json_line
from ..datasets.lines import decode_line, iter_lines, open_binary
from ..errors import UserError
from ..records import Prediction, Variant
from ..safeio import paths as containment
from ..safeio.paths import write_text

COMMAND_FIELD = "audits.invariance.command"
PROMPTS_ENV = "EVAL_FIREWALL_PROMPTS"
PREDICTIONS_ENV = "EVAL_FIREWALL_PREDICTIONS"


def prompt_record(v: Variant) -> dict[str, str]:
    """A prompt as a line of the prompts file."""
    return {"id": v.id, "row_id": v.row.row_id, "kind": v.kind, "prompt": v.prompt,
            "sha": v.sha}


def write_prompts(path: Path, variants: Sequence[Variant]) -> None:
    """Write the prompts file (JSONL, one prompt a line)."""
    write_text(path, "".join(json.dumps(prompt_record(v), ensure_ascii=False) + "\n"
                             for v in variants), what="the prompts", make_parents=True)


def _scalar(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        text = str(value).strip()
        return text or None
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def read_predictions(path: Path, display: str, limits: LimitsConfig | None = None
                     ) -> dict[str, Prediction]:
    """Predictions by prompt id; a malformed file is a UserError naming file and line.
    Read line by line within ``limits`` (file, line and JSON nesting)."""
    if not path.is_file():
        raise UserError("predictions file not found", path=display)
    limits = limits or LimitsConfig()
    out: dict[str, Prediction] = {}
    try:
        with open_binary(path, limits, display) as fh:
            for number, raw in iter_lines(fh, int(limits.max_row_bytes)):
                if raw is None:
                    raise UserError(f"the line is longer than limits.max_row_bytes "
                                    f"({int(limits.max_row_bytes)} bytes)", path=display,
                                    line=number)
                line = decode_line(raw, number, display)
                if not line.strip():
                    continue
                try:
                    record = parse_json_line(line.rstrip("\r\n"), limits)
                except json.JSONDecodeError as exc:
                    raise UserError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                                    path=display, line=number) from None
                except ValueError as exc:                 # nested too deeply
                    raise UserError(str(exc), path=display, line=number) from None
                if not isinstance(record, dict):
                    raise UserError("expected a JSON object", path=display, line=number)
                if "id" not in record or _scalar(record["id"]) is None:
                    raise UserError("a prediction needs an 'id'", path=display, line=number,
                                    field="id")
                if "prediction" not in record:
                    raise UserError("a prediction needs a 'prediction' key", path=display,
                                    line=number, field="prediction")
                pid = str(record["id"])
                if pid in out:
                    raise UserError(f"duplicate prediction id {_quoted(pid)} (first at line "
                                    f"{out[pid].line})", path=display, line=number, field="id")
                out[pid] = Prediction(pid, _scalar(record["prediction"]),
                                      _scalar(record.get("sha")), display, number)
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text: {exc.reason}", path=display) from None
    return out


def _quoted(value: str) -> str:
    text = shown(value)
    return f"'{text}'" if text else f"({len(value)} characters)"


def run_command(command: str, variants: Sequence[Variant], *, cwd: Path, source: str,
                timeout: float | None = None) -> dict[str, Prediction]:
    """Run the configured prediction command on the prompts and read what it writes.

    ``{prompts}`` and ``{predictions}`` in the command are replaced by the two file paths,
    which are also in the environment as EVAL_FIREWALL_PROMPTS and EVAL_FIREWALL_PREDICTIONS.
    The command is split like a shell would but not run by a shell.
    """
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise UserError(f"cannot parse the command: {exc}", path=source,
                        field=COMMAND_FIELD) from None
    if not args:
        raise UserError("the command is empty", path=source, field=COMMAND_FIELD)
    with tempfile.TemporaryDirectory(prefix="eval-firewall-") as tmp:
        prompts, predictions = Path(tmp) / "prompts.jsonl", Path(tmp) / "predictions.jsonl"
        write_prompts(prompts, variants)
        args = [a.replace("{prompts}", str(prompts)).replace("{predictions}", str(predictions))
                for a in args]
        env = {**os.environ, PROMPTS_ENV: str(prompts), PREDICTIONS_ENV: str(predictions)}
        try:
            done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except FileNotFoundError:
            raise UserError(f"command not found: {args[0]}", path=source,
                            field=COMMAND_FIELD) from None
        except subprocess.TimeoutExpired:
            raise UserError(f"the prediction command did not finish in {timeout:g} s",
                            path=source, field=COMMAND_FIELD) from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()
            why = f": {tail[-1]}" if tail else ""
            raise UserError(f"the prediction command exited with {done.returncode}{why}",
                            path=source, field=COMMAND_FIELD)
        if not predictions.is_file():
            raise UserError("the prediction command wrote no predictions file "
                            f"(expected at {{predictions}} / ${PREDICTIONS_ENV})", path=source,
                            field=COMMAND_FIELD)
        return read_predictions(predictions, "prediction command output")


def load_predictions(config: Config, variants: Sequence[Variant], *, allow_commands: bool
                     ) -> tuple[dict[str, Prediction] | None, str]:
    """The predictions the invariance audit uses and where they came from, or (None, why not).

    The configured command runs only when ``allow_commands``; otherwise the predictions file
    (if any) is read.
    """
    cfg = config.audits.invariance
    if cfg.command and allow_commands:
        found = run_command(cfg.command, variants, cwd=config.root, source=config.source,
                            timeout=cfg.timeout)
        return found, "the prediction command"
    if cfg.predictions:
        key = "audits.invariance.predictions"
        path = config.root / cfg.predictions
        display = cfg.predictions
        if not path.is_file():
            raise UserError("predictions file not found", path=config.source,
                            line=config.line_of(key), field=key, hint=display)
        containment.check_file(path, containment.repository_root(config.root),
                               source=config.source, line=config.line_of(key), field=key,
                               display=display)
        return read_predictions(path, display, config.limits), display
    if cfg.command:
        return None, ("the prediction command runs only when allowed (eval-firewall audit "
                      "--allow-command, or a trusted base-branch run); never for a pull "
                      "request's own configuration")
    return None, "no predictions file or command configured (audits.invariance)"
