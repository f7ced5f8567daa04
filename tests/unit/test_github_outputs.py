"""GITHUB_OUTPUT values survive newlines; workflow commands are escaped; the marker is stable."""

from __future__ import annotations

from eval_firewall.github.comment import Target, marker, previous_findings
from eval_firewall.github.outputs import add_job_summary, escape_data, set_outputs


def test_outputs_use_heredoc_delimiters_safe_for_multiline_values(tmp_path):
    out = tmp_path / "output"
    evil = "line one\nghadelimiter_x\nstatus=pass"
    set_outputs(out, {"status": "fail", "note": evil})
    text = out.read_text()
    blocks = text.split("\n")
    assert blocks[0].startswith("status<<ghadelimiter_")
    delimiter = blocks[2]
    assert blocks[0] == f"status<<{delimiter}" and blocks[1] == "fail"
    note_delim = blocks[3].split("<<")[1]
    assert text.count(note_delim) == 2 and evil in text


def test_job_summary_appends(tmp_path):
    path = tmp_path / "summary"
    add_job_summary(path, "# one")
    add_job_summary(path, "two\n")
    assert path.read_text() == "# one\ntwo\n"


def test_workflow_command_data_is_escaped():
    assert escape_data("50%\r\nnext::error::x") == "50%25%0D%0Anext::error::x"


def test_marker_names_the_check_and_the_count():
    m = marker("data gate --> <b>", 3)
    assert "-->" not in m[:-3] and "<b>" not in m
    assert previous_findings(f"{m}\nbody", "data gate --> <b>") == 3
    assert previous_findings(f"{m}\nbody", "other") is None


def test_links_point_at_the_line_in_the_head_commit():
    t = Target("https://github.com", "o/r", "a" * 40, "sub/")
    blob = f"https://github.com/o/r/blob/{'a' * 40}/sub"
    assert t.link("data/x y#.jsonl", 7) == f"{blob}/data/x%20y%23.jsonl#L7"
    assert t.link("data/x.parquet", 7).endswith("/sub/data/x.parquet")
