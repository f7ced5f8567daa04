"""Inputs and runner variables parsed once into Settings; bad input names the input."""

from __future__ import annotations

import pytest

from eval_firewall.errors import UserError
from eval_firewall.github.settings import load_settings

TOKEN = "ghs_secretsecretsecret"


def env(**inputs: str) -> dict[str, str]:
    base = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": "/github/workflow/event.json",
            "GITHUB_REPOSITORY": "octo-org/datasets", "GITHUB_WORKSPACE": "/tmp",
            "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
            "GITHUB_SERVER_URL": "https://ghe.example.com", "GITHUB_RUN_ID": "17",
            "INPUT_GITHUB-TOKEN": TOKEN}
    base.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    return base


def test_inputs_use_github_names_with_hyphens_and_defaults():
    s = load_settings(env(**{"check-name": "data gate", "fail-on": "warning",
                             "comment": " always "}))
    assert (s.check_name, s.fail_on, s.comment) == ("data gate", "warning", "always")
    assert s.config == ".eval-firewall.yml" and s.report_dir == "eval-firewall-report"
    assert s.post is True and s.cache_dir == ".eval-firewall-cache"
    assert s.api_url == "https://ghe.example.com/api/v3"
    assert s.run_url == "https://ghe.example.com/octo-org/datasets/actions/runs/17"


def test_empty_inputs_mean_their_defaults_and_the_token_falls_back_to_github_token():
    e = env(**{"fail-on": "", "cache-dir": ""})
    del e["INPUT_GITHUB-TOKEN"]
    e["GITHUB_TOKEN"] = TOKEN
    s = load_settings(e)
    assert s.fail_on is None and s.cache_dir == ".eval-firewall-cache"
    assert s.token.get_secret_value() == TOKEN


def test_the_token_never_shows_in_repr_or_errors():
    s = load_settings(env())
    assert TOKEN not in repr(s) and TOKEN not in str(s)


@pytest.mark.parametrize("name,value", [("comment", "sometimes"), ("fail-on", "fatal"),
                                        ("post", "maybe")])
def test_a_bad_input_is_one_line_naming_it(name, value):
    with pytest.raises(UserError) as info:
        load_settings(env(**{name: value}))
    assert info.value.field == name and value in str(info.value)
    assert "\n" not in str(info.value)


def test_outside_github_actions_says_so():
    e = env()
    del e["GITHUB_EVENT_NAME"]
    with pytest.raises(UserError, match="GITHUB_EVENT_NAME"):
        load_settings(e)
