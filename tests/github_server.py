"""A GitHub-compatible REST server on 127.0.0.1 for the action's end-to-end tests.

It speaks the parts of the REST API the action uses, the way api.github.com (or GitHub
Enterprise Server, under ``/api/v3``) does: token auth, JSON bodies, ``url``/``html_url``
fields PyGithub follows, Link-header pagination, and the documented limits and required
fields, answered with GitHub's 401/403/404/422 bodies. Comments, check runs (with their
annotations) and commit statuses are kept in memory for the tests to inspect.

Pull-request reviews follow GitHub's documented rules: an author cannot approve (or request
changes on) their own pull request (422), a review is on the head commit unless it names
another, a pending review is listed to its author only, only an approval or a change request
can be dismissed (its state becomes DISMISSED). Team membership is readable only by a token
that is not an installation token (GITHUB_TOKEN gets 403, as it lacks ``members: read``).

Switches inject what GitHub does on a bad day: 403 on the Checks API (a token without
``checks: write``), a read-only token, a 5xx once, a secondary rate limit.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API_PREFIX = "/api/v3"
COMMENT_MAX = 65_536
OUTPUT_MAX = 65_535
ANNOTATIONS_MAX = 50
DOCS = "https://docs.github.com/rest"
INTEGRATION_403 = "Resource not accessible by integration"
SECONDARY_LIMIT = ("You have exceeded a secondary rate limit. Please wait a few minutes before "
                   "you try again.")
CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success", "skipped",
               "stale", "timed_out"}
CHECK_STATUSES = {"queued", "in_progress", "completed", "waiting", "requested", "pending"}
STATUS_STATES = {"error", "failure", "pending", "success"}
LEVELS = {"notice", "warning", "failure"}
SHA = re.compile(r"^[0-9a-f]{40}$")


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers


def _invalid(resource: str, field_name: str, code: str = "invalid", message: str | None = None):
    error = {"resource": resource, "field": field_name, "code": code}
    if message:
        error["message"] = message
    return ApiError(422, "Validation Failed", [error])


@dataclass
class User:
    login: str
    id: int
    app: bool = False      # an installation token (GITHUB_TOKEN): GET /user is forbidden

    def json(self) -> dict:
        return {"login": self.login, "id": self.id, "node_id": f"U_{self.id}",
                "type": "Bot" if self.app else "User"}


@dataclass
class Fault:
    method: str
    pattern: str
    kind: str              # "5xx" | "secondary" | "403"
    times: int = 1


@dataclass
class State:
    repos: set[str] = field(default_factory=set)
    tokens: dict[str, User] = field(default_factory=dict)
    pulls: dict[tuple[str, int], dict] = field(default_factory=dict)
    comments: dict[int, dict] = field(default_factory=dict)
    check_runs: dict[int, dict] = field(default_factory=dict)
    statuses: list[dict] = field(default_factory=list)
    reviews: dict[int, dict] = field(default_factory=dict)
    commit_authors: dict[str, str] = field(default_factory=dict)     # sha -> login
    teams: dict[tuple[str, str], set[str]] = field(default_factory=dict)   # (org, slug)
    log: list[dict] = field(default_factory=list)      # every request: method, path, status
    faults: list[Fault] = field(default_factory=list)
    forbid_checks: bool = False
    read_only: bool = False
    next_id: int = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class GitHubServer:
    """Start with :meth:`start`; ``api_url`` goes into GITHUB_API_URL."""

    def __init__(self) -> None:
        self.state = State()
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.server_url + API_PREFIX

    def start(self) -> "GitHubServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- set-up -----------------------------------------------------------------------
    def add_repo(self, full_name: str) -> None:
        self.state.repos.add(full_name)

    def add_token(self, token: str, login: str, *, app: bool = False) -> None:
        self.state.tokens[token] = User(login, 100 + len(self.state.tokens), app)

    def add_pull(self, repo: str, number: int, head_sha: str, base_sha: str,
                 head_repo: str | None = None, author: str = "contributor") -> None:
        self.state.pulls[(repo, number)] = {"number": number, "head_sha": head_sha,
                                            "base_sha": base_sha, "head_repo": head_repo or repo,
                                            "author": author}

    def push_pull(self, repo: str, number: int, head_sha: str) -> None:
        """A new head commit on the pull request (a push to its branch)."""
        self.state.pulls[(repo, number)]["head_sha"] = head_sha

    def set_commit_author(self, sha: str, login: str) -> None:
        """The GitHub account the commit's author e-mail belongs to."""
        self.state.commit_authors[sha] = login

    def add_team(self, org: str, slug: str, members: list[str]) -> None:
        self.state.teams[(org, slug)] = set(members)

    def review(self, repo: str, number: int, login: str, event: str | None,
               commit_id: str | None = None, body: str = "") -> dict:
        """``login`` reviews the pull request (event APPROVE, REQUEST_CHANGES, COMMENT; None
        leaves it pending), as POST /pulls/{n}/reviews does; raises ApiError as GitHub
        answers."""
        with self.lock:
            return self._review(repo, number, self._user(login), event, commit_id, body)

    def dismiss(self, repo: str, review_id: int, message: str = "dismissed") -> dict:
        with self.lock:
            return self._dismiss(repo, review_id, message)

    def _user(self, login: str) -> User:
        return next((u for u in self.state.tokens.values() if u.login == login),
                    User(login, 5000 + len(login)))

    def _review(self, repo: str, number: int, user: User, event: str | None,
                commit_id: str | None, body: str) -> dict:
        pull = self.state.pulls.get((repo, number))
        if pull is None:
            raise ApiError(404, "Not Found")
        states = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED",
                  "COMMENT": "COMMENTED", None: "PENDING"}
        if event not in states:
            raise _invalid("PullRequestReview", "event")
        if user.login == pull["author"] and event in ("APPROVE", "REQUEST_CHANGES"):
            what = "approve" if event == "APPROVE" else "request changes on"
            raise ApiError(422, "Unprocessable Entity",
                           [f"Can not {what} your own pull request"])
        if event in ("REQUEST_CHANGES", "COMMENT") and not body:
            raise _invalid("PullRequestReview", "body", "missing_field")
        commit = commit_id or pull["head_sha"]
        if not SHA.match(commit):
            raise _invalid("PullRequestReview", "commit_id")
        rid = self.state.new_id()
        api = f"{self.api_url}/repos/{repo}"
        review = {"id": rid, "node_id": f"PRR_{rid}", "user": user.json(), "body": body,
                  "state": states[event], "commit_id": commit,
                  "html_url": f"{self.server_url}/{repo}/pull/{number}#pullrequestreview-{rid}",
                  "pull_request_url": f"{api}/pulls/{number}",
                  "author_association": "MEMBER",
                  "submitted_at": None if event is None else "2024-01-01T00:00:00Z",
                  "_repo": repo, "_pull": number}
        self.state.reviews[rid] = review
        return self._public(review)

    def _dismiss(self, repo: str, review_id: int, message: str) -> dict:
        review = self.state.reviews.get(review_id)
        if review is None or review["_repo"] != repo:
            raise ApiError(404, "Not Found")
        if not message:
            raise _invalid("PullRequestReview", "message", "missing_field")
        if review["state"] not in ("APPROVED", "CHANGES_REQUESTED"):
            raise ApiError(422, "Unprocessable Entity",
                           ["Can not dismiss a " + review["state"].lower() + " pull request review"])
        review["state"] = "DISMISSED"
        return self._public(review)

    def add_comment(self, repo: str, number: int, body: str, login: str) -> dict:
        user = next((u for u in self.state.tokens.values() if u.login == login),
                    User(login, 9999))
        return self._create_comment(repo, number, body, user)

    def fail(self, method: str, pattern: str, kind: str = "5xx", times: int = 1) -> None:
        self.state.faults.append(Fault(method, pattern, kind, times))

    # --- inspection -------------------------------------------------------------------
    def comments_on(self, repo: str, number: int) -> list[dict]:
        return [c for c in self.state.comments.values()
                if c["_repo"] == repo and c["_issue"] == number]

    def requests(self, method: str | None = None, pattern: str = "") -> list[dict]:
        return [r for r in self.state.log
                if (method is None or r["method"] == method) and re.search(pattern, r["path"])]

    # --- resources --------------------------------------------------------------------
    def _create_comment(self, repo: str, number: int, body: str, user: User) -> dict:
        cid = self.state.new_id()
        comment = {
            "id": cid, "node_id": f"IC_{cid}",
            "url": f"{self.api_url}/repos/{repo}/issues/comments/{cid}",
            "html_url": f"{self.server_url}/{repo}/pull/{number}#issuecomment-{cid}",
            "issue_url": f"{self.api_url}/repos/{repo}/issues/{number}",
            "body": body, "user": user.json(), "author_association": "NONE",
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
            "_repo": repo, "_issue": number, "_edits": 0,
        }
        self.state.comments[cid] = comment
        return comment

    def _public(self, obj: dict) -> dict:
        return {k: v for k, v in obj.items() if not k.startswith("_")}


def _check_comment_body(body: Any) -> str:
    if not isinstance(body, str) or not body:
        raise _invalid("IssueComment", "body", "missing_field")
    if len(body) > COMMENT_MAX:
        raise _invalid("IssueComment", "body", "custom",
                       f"body is too long (maximum is {COMMENT_MAX} characters)")
    return body


def _check_output(output: Any) -> dict:
    if not isinstance(output, dict):
        raise _invalid("CheckRun", "output")
    for key in ("title", "summary"):
        if not isinstance(output.get(key), str) or not output[key]:
            raise _invalid("CheckRun", f"output.{key}", "missing_field")
    for key in ("summary", "text"):
        if isinstance(output.get(key), str) and len(output[key]) > OUTPUT_MAX:
            raise _invalid("CheckRun", f"output.{key}", "custom",
                           f"{key} is too long (maximum is {OUTPUT_MAX} characters)")
    annotations = output.get("annotations") or []
    if len(annotations) > ANNOTATIONS_MAX:
        raise ApiError(422, f"Only {ANNOTATIONS_MAX} annotations are allowed per request")
    for a in annotations:
        for key in ("path", "start_line", "end_line", "annotation_level", "message"):
            if key not in a or a[key] in (None, ""):
                raise _invalid("CheckRun", f"output.annotations.{key}", "missing_field")
        if a["annotation_level"] not in LEVELS:
            raise _invalid("CheckRun", "output.annotations.annotation_level")
        if not isinstance(a["start_line"], int) or a["start_line"] < 1 \
                or a["end_line"] < a["start_line"]:
            raise _invalid("CheckRun", "output.annotations.start_line")
    return output


def _handler(server: GitHubServer):
    state = server.state

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:   # quiet
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            entry = {"method": method, "path": split.path, "status": None,
                     "body": json.loads(raw) if raw else None}
            headers: dict[str, str] = {}
            try:
                with server.lock:
                    status, payload, headers = self._route(method, split, entry["body"])
            except ApiError as exc:
                status = exc.status
                payload = {"message": exc.message, "documentation_url": DOCS}
                if exc.errors:
                    payload["errors"] = exc.errors
                headers = exc.headers or {}
            entry["status"] = status
            with server.lock:
                state.log.append(entry)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        # -- dispatch ----------------------------------------------------------------
        def _route(self, method: str, split, body: Any) -> tuple[int, Any, dict]:
            path = split.path
            if not path.startswith(API_PREFIX + "/"):
                raise ApiError(404, "Not Found")
            path = path[len(API_PREFIX):]
            user = self._auth()
            for fault in state.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.pattern, path):
                    fault.times -= 1
                    if fault.kind == "secondary":
                        raise ApiError(403, SECONDARY_LIMIT, headers={"Retry-After": "1"})
                    if fault.kind == "403":      # a token without the permission
                        raise ApiError(403, INTEGRATION_403)
                    raise ApiError(502, "Server Error")
            if method in ("POST", "PATCH", "PUT") and state.read_only:
                raise ApiError(403, INTEGRATION_403)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}

            if path == "/user" and method == "GET":
                if user.app:
                    raise ApiError(403, INTEGRATION_403)
                return 200, user.json(), {}
            m = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)(?:/memberships/([^/]+))?", path)
            if m and method == "GET":
                return self._team(m[1], m[2], m[3], user)
            m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/.*)?", path)
            if not m:
                raise ApiError(404, "Not Found")
            repo, rest = m[1], m[2] or ""
            if repo not in state.repos:
                raise ApiError(404, "Not Found")
            return self._repo_route(method, repo, rest, body, query, user)

        def _auth(self) -> User:
            header = self.headers.get("Authorization", "")
            if not header:
                raise ApiError(401, "Requires authentication")
            scheme, _, token = header.partition(" ")
            user = state.tokens.get(token) if scheme.lower() in ("token", "bearer") else None
            if user is None:
                raise ApiError(401, "Bad credentials")
            return user

        def _repo_route(self, method, repo, rest, body, query, user) -> tuple[int, Any, dict]:
            api = f"{server.api_url}/repos/{repo}"
            if rest == "" and method == "GET":
                return 200, {"full_name": repo, "name": repo.split("/")[1], "url": api}, {}
            m = re.fullmatch(r"/pulls/(\d+)", rest)
            if m and method == "GET":
                pull = state.pulls.get((repo, int(m[1])))
                if pull is None:
                    raise ApiError(404, "Not Found")
                author = server._user(pull["author"]).json()
                return 200, {"number": pull["number"], "url": f"{api}/pulls/{pull['number']}",
                             "user": author,
                             "head": {"sha": pull["head_sha"],
                                      "repo": {"full_name": pull["head_repo"]}},
                             "base": {"sha": pull["base_sha"], "repo": {"full_name": repo}}}, {}
            m = re.fullmatch(r"/pulls/(\d+)/reviews", rest)
            if m:
                number = int(m[1])
                if (repo, number) not in state.pulls:
                    raise ApiError(404, "Not Found")
                if method == "GET":      # oldest first; a pending review only to its author
                    items = sorted((r for r in state.reviews.values()
                                    if r["_repo"] == repo and r["_pull"] == number
                                    and (r["state"] != "PENDING"
                                         or r["user"]["login"] == user.login)),
                                   key=lambda r: r["id"])
                    return self._page(items, query, f"{api}/pulls/{number}/reviews")
                if method == "POST":
                    body = body or {}
                    return 200, server._review(repo, number, user, body.get("event"),
                                               body.get("commit_id"), body.get("body") or ""), {}
            m = re.fullmatch(r"/pulls/(\d+)/reviews/(\d+)/dismissals", rest)
            if m and method == "PUT":
                return 200, server._dismiss(repo, int(m[2]), (body or {}).get("message", "")), {}
            m = re.fullmatch(r"/issues/(\d+)(/comments)?", rest)
            if m:
                number = int(m[1])
                if (repo, number) not in state.pulls:
                    raise ApiError(404, "Not Found")
                if not m[2] and method == "GET":
                    return 200, {"number": number, "url": f"{api}/issues/{number}"}, {}
                if m[2] and method == "GET":
                    items = sorted(server.comments_on(repo, number), key=lambda c: c["id"])
                    return self._page(items, query, f"{api}/issues/{number}/comments")
                if m[2] and method == "POST":
                    text = _check_comment_body((body or {}).get("body"))
                    return 201, server._public(server._create_comment(repo, number, text,
                                                                      user)), {}
            m = re.fullmatch(r"/issues/comments/(\d+)", rest)
            if m:
                comment = state.comments.get(int(m[1]))
                if comment is None or comment["_repo"] != repo:
                    raise ApiError(404, "Not Found")
                if method == "GET":
                    return 200, server._public(comment), {}
                if method == "PATCH":
                    if comment["user"]["login"] != user.login:
                        raise ApiError(403, "Must have admin rights to Repository.")
                    comment["body"] = _check_comment_body((body or {}).get("body"))
                    comment["_edits"] += 1
                    comment["updated_at"] = "2024-01-02T00:00:00Z"
                    return 200, server._public(comment), {}
            if rest == "/check-runs" and method == "POST":
                return 201, self._create_check(repo, body or {}), {}
            m = re.fullmatch(r"/check-runs/(\d+)", rest)
            if m:
                run = state.check_runs.get(int(m[1]))
                if run is None or run["_repo"] != repo:
                    raise ApiError(404, "Not Found")
                if method == "GET":
                    return 200, server._public(run), {}
                if method == "PATCH":
                    if state.forbid_checks:
                        raise ApiError(403, INTEGRATION_403)
                    self._update_check(run, body or {})
                    return 200, server._public(run), {}
            m = re.fullmatch(r"/commits/([^/]+)", rest)
            if m and method == "GET":
                if not SHA.match(m[1]):
                    raise ApiError(422, f"No commit found for SHA: {m[1]}")
                login = state.commit_authors.get(m[1])
                return 200, {"sha": m[1], "url": f"{api}/commits/{m[1]}",
                             "author": server._user(login).json() if login else None,
                             "commit": {"author": {"name": login or "Someone",
                                                   "email": "someone@example.com"}}}, {}
            m = re.fullmatch(r"/statuses/([^/]+)", rest)
            if m and method == "POST":
                return 201, self._create_status(repo, m[1], body or {}, user), {}
            m = re.fullmatch(r"/commits/([^/]+)/statuses", rest)
            if m and method == "GET":
                items = [s for s in state.statuses if s["_repo"] == repo and s["_sha"] == m[1]]
                return self._page(items, query, f"{api}/commits/{m[1]}/statuses")
            raise ApiError(404, "Not Found")

        def _team(self, org: str, slug: str, login: str | None, user: User
                  ) -> tuple[int, Any, dict]:
            if user.app:                 # an installation token without members: read
                raise ApiError(403, INTEGRATION_403)
            members = state.teams.get((org, slug))
            if members is None:
                raise ApiError(404, "Not Found")
            url = f"{server.api_url}/orgs/{org}/teams/{slug}"
            if login is None:
                return 200, {"id": hash((org, slug)) % 10**6, "slug": slug, "name": slug,
                             "url": url}, {}
            if login not in members:
                raise ApiError(404, "Not Found")
            return 200, {"url": f"{url}/memberships/{login}", "role": "member",
                         "state": "active"}, {}

        def _page(self, items: list[dict], query: dict, url: str) -> tuple[int, Any, dict]:
            per_page = max(1, min(100, int(query.get("per_page", 30))))
            page = max(1, int(query.get("page", 1)))
            last = max(1, -(-len(items) // per_page))
            chunk = items[(page - 1) * per_page: page * per_page]
            links = []
            if page < last:
                links.append(f'<{url}?{urlencode({"per_page": per_page, "page": page + 1})}>; '
                             'rel="next"')
                links.append(f'<{url}?{urlencode({"per_page": per_page, "page": last})}>; '
                             'rel="last"')
            headers = {"Link": ", ".join(links)} if links else {}
            return 200, [server._public(i) for i in chunk], headers

        def _create_check(self, repo: str, body: dict) -> dict:
            if state.forbid_checks:
                raise ApiError(403, INTEGRATION_403)
            for key in ("name", "head_sha"):
                if not isinstance(body.get(key), str) or not body[key]:
                    raise _invalid("CheckRun", key, "missing_field")
            if not SHA.match(body["head_sha"]):
                raise _invalid("CheckRun", "head_sha")
            rid = state.new_id()
            run = {"id": rid, "name": body["name"], "head_sha": body["head_sha"],
                   "status": "queued", "conclusion": None, "details_url": None,
                   "url": f"{server.api_url}/repos/{repo}/check-runs/{rid}",
                   "html_url": f"{server.server_url}/{repo}/runs/{rid}",
                   "output": {"title": None, "summary": None, "text": None,
                              "annotations_count": 0,
                              "annotations_url": f"{server.api_url}/repos/{repo}/check-runs/"
                                                 f"{rid}/annotations"},
                   "_repo": repo, "_annotations": [], "_batches": []}
            self._update_check(run, body)
            state.check_runs[rid] = run
            return server._public(run)

        def _update_check(self, run: dict, body: dict) -> None:
            status = body.get("status", run["status"])
            if status not in CHECK_STATUSES:
                raise _invalid("CheckRun", "status")
            conclusion = body.get("conclusion", run["conclusion"])
            if conclusion is not None and conclusion not in CONCLUSIONS:
                raise _invalid("CheckRun", "conclusion")
            if status == "completed" and conclusion is None:
                raise _invalid("CheckRun", "conclusion", "missing_field")
            output = _check_output(body["output"]) if "output" in body else None
            run["status"] = "completed" if conclusion else status
            run["conclusion"] = conclusion
            if body.get("details_url"):
                run["details_url"] = body["details_url"]
            if output is not None:
                annotations = output.get("annotations") or []
                run["_annotations"].extend(annotations)      # GitHub appends annotations
                run["_batches"].append(len(annotations))
                run["output"].update(title=output["title"], summary=output["summary"],
                                     text=output.get("text"),
                                     annotations_count=len(run["_annotations"]))

        def _create_status(self, repo: str, sha: str, body: dict, user: User) -> dict:
            if not SHA.match(sha):
                raise ApiError(422, f"No commit found for SHA: {sha}")
            state_ = body.get("state")
            if state_ is None:
                raise _invalid("Status", "state", "missing_field")
            if state_ not in STATUS_STATES:
                raise _invalid("Status", "state")
            description = body.get("description")
            if description is not None and len(description) > 140:
                raise _invalid("Status", "description", "custom",
                               "description is too long (maximum is 140 characters)")
            sid = state.new_id()
            status = {"id": sid, "state": state_, "description": description,
                      "context": body.get("context") or "default",
                      "target_url": body.get("target_url"),
                      "url": f"{server.api_url}/repos/{repo}/statuses/{sha}",
                      "creator": user.json(), "_repo": repo, "_sha": sha}
            state.statuses.append(status)
            return server._public(status)

    return Handler
