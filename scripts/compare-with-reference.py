#!/usr/bin/env python3
"""Compare inlet's playground with the reference, fivetran-api-playground 1.1.9.

Starts both servers, sends each the same requests (the sequences the seed connectors send,
then every error case), and compares what a client can see: status, content type, the exact
body of every error, and the shape of every data response (keys in order, value kinds such
as UUID or timestamp, list lengths). Data values differ by design: the reference draws
random users at every start.

Usage (the reference needs Python 3.11 and `pip install fivetran-api-playground==1.1.9`):

    cargo build -p inlet
    scripts/compare-with-reference.py --reference "$(command -v playground)" \
        --inlet "${CARGO_TARGET_DIR:-target}/debug/inlet"

Prints one line per request and a summary; exits 1 if any answer differs in a way the
documentation (docs/playground.md) does not list as deliberate.
"""

import argparse
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, argv, env=None):
        self.name = name
        self.port = int(argv[argv.index("--port") + 1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.base + "/incremental/step?start_id=1&end_id=1", timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        else:
            raise SystemExit(f"{name} did not start: {self.banner()}")

    def banner(self):
        self.log.seek(0)
        return self.log.read()

    def credentials(self):
        """Reads the credentials each server prints at start (the last printing wins: the
        reference's reloader prints twice and serves with the second set)."""
        text = self.banner()
        found = {}
        patterns = {
            "basic": r"(?:Username: |username )(\S+@example\.com)\s+(?:Password: |password )(\w{8})\b",
            "bearer": r"(?:Bearer Token: |token )([0-9a-f-]{36})",
            "api_key": r"(?:API Key: |apiKey )([0-9a-f-]{36})",
            "session": r"(?:Username: |username )(\S+@example\.com)\s+(?:Password: |password )(\w{10})\b",
        }
        for key, pattern in patterns.items():
            matches = re.findall(pattern, text)
            found[key] = matches[-1]
        return found

    def request(self, method, path, headers=None, body=None):
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {}, data=body)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def kind(value, host):
    if isinstance(value, str):
        if UUID.match(value):
            return "uuid"
        if STAMP.match(value):
            return "timestamp"
        if value.isdigit():
            return "digits"
        if value.startswith("http://"):
            return "url:" + value.replace(host, "HOST")
        try:
            if STAMP.match(base64.b64decode(value).decode()):
                return "base64(timestamp)"
        except Exception:
            pass
        return "text+newline" if "\n" in value else "text"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return ["list", len(value)] + ([shape(value[0], host)] if value else [])
    return shape(value, host)


def shape(value, host):
    if isinstance(value, dict):
        return {"keys": list(value.keys()), "kinds": [kind(v, host) for v in value.values()]}
    return kind(value, host)


def answer_shape(server, status, headers, body):
    content_type = headers.get("Content-Type")
    if content_type == "application/json":
        parsed = json.loads(body)
        if isinstance(parsed, dict) and list(parsed.keys()) == ["error"]:
            return status, content_type, ("error", body)
        return status, content_type, ("json", shape(parsed, f"127.0.0.1:{server.port}"))
    return status, content_type, ("body", body)


# Each case: a name, then a function of a server returning (method, path, headers, body).
def cases(ref_creds, inlet_creds):
    def basic(creds):
        user, password = creds["basic"]
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def session_body(creds):
        user, password = creds["session"]
        return json.dumps({"username": user, "password": password}).encode()

    by = lambda ref, ours: (lambda s: ref if s.name == "reference" else ours)  # noqa: E731
    yield "offset, defaults", lambda s: ("GET", "/pagination/offset", {}, None)
    yield "offset, last page", lambda s: ("GET", "/pagination/offset?limit=50&offset=150", {}, None)
    yield "offset, createdAt desc", lambda s: ("GET", "/pagination/offset?order_by=createdAt&order_type=desc&limit=5", {}, None)
    yield "offset, past the end", lambda s: ("GET", "/pagination/offset?offset=500", {}, None)
    yield "offset, limit=abc falls back to 10", lambda s: ("GET", "/pagination/offset?limit=abc", {}, None)
    yield "page_number", lambda s: ("GET", "/pagination/page_number?per_page=7&page=3", {}, None)
    yield "next_page_url", lambda s: ("GET", "/pagination/next_page_url?per_page=5&page=2", {}, None)
    yield "next_page_url, last page", lambda s: ("GET", "/pagination/next_page_url?per_page=5&page=40", {}, None)
    yield "next_page_url, page -1", lambda s: ("GET", "/pagination/next_page_url?per_page=1&page=-1", {}, None)
    yield "keyset, first page", lambda s: ("GET", "/pagination/keyset", {}, None)
    yield "keyset, updated_since epoch", lambda s: ("GET", "/pagination/keyset?updated_since=2024-01-01T00:00:00Z", {}, None)
    yield "timestamp, all", lambda s: ("GET", "/incremental/timestamp", {}, None)
    yield "timestamp, lenient since", lambda s: ("GET", "/incremental/timestamp?since=2024-1-2T3:4:5Z", {}, None)
    yield "step 1..100", lambda s: ("GET", "/incremental/step?start_id=1&end_id=100", {}, None)
    yield "step 199..205", lambda s: ("GET", "/incremental/step?start_id=199&end_id=205", {}, None)
    yield "step 201..300", lambda s: ("GET", "/incremental/step?start_id=201&end_id=300", {}, None)
    for path in [
        "/pagination/offset?limit=51",
        "/pagination/offset?limit=0",
        "/pagination/offset?offset=-1",
        "/pagination/offset?order_by=name",
        "/pagination/offset?order_type=up",
        "/pagination/offset?foo=1",
        "/pagination/offset?updated_since=2026-11-20T00:00:00",
        "/pagination/offset?updated_since=2026-11-20T00:00:00%2B00:00",
        "/pagination/offset?updated_since=2026-11-20T00:00:00.5Z",
        "/pagination/offset?updated_since=2026-02-30T00:00:00Z",
        "/pagination/page_number?page=0",
        "/pagination/page_number?per_page=51",
        "/pagination/page_number?order_by=x&per_page=99",
        "/pagination/next_page_url?per_page=0",
        "/pagination/keyset?per_page=5",
        "/pagination/keyset?updated_since=x&scroll_param=y",
        "/pagination/keyset?scroll_param=bm90IGEgZGF0ZQ==",
        "/pagination/keyset?scroll_param=YWI",
        "/pagination/keyset?updated_since=2026-11-20T00:00:00",
        "/incremental/timestamp?since=2026-11-20",
        "/incremental/timestamp?since=yesterdayZ",
        "/incremental/timestamp?updated_since=2026-11-20T00:00:00Z",
        "/incremental/step?start_id=1",
        "/incremental/step?start_id=a&end_id=2",
        "/incremental/step?start_id=0&end_id=1",
        "/incremental/step?start_id=3&end_id=2",
        "/incremental/step?start_id=1&end_id=2&step=1",
        "/users",
        "/auth/api_key",
        "/auth/http_bearer",
        "/auth/http_basic",
    ]:
        yield f"error: GET {path}", (lambda p: lambda s: ("GET", p, {}, None))(path)
    yield "error: POST on a GET endpoint", lambda s: ("POST", "/incremental/step", {}, None)
    yield "error: wrong API key", lambda s: ("GET", "/auth/api_key", {"Authorization": "apiKey nope"}, None)
    yield "error: header without a space", lambda s: ("GET", "/auth/http_bearer", {"Authorization": "nospace"}, None)
    yield "api key", lambda s: ("GET", "/auth/api_key", {"Authorization": "apiKey " + by(ref_creds, inlet_creds)(s)["api_key"]}, None)
    yield "bearer", lambda s: ("GET", "/auth/http_bearer", {"Authorization": "Bearer " + by(ref_creds, inlet_creds)(s)["bearer"]}, None)
    yield "basic", lambda s: ("GET", "/auth/http_basic", {"Authorization": basic(by(ref_creds, inlet_creds)(s))}, None)
    json_header = {"Content-Type": "application/json"}
    yield "session login", lambda s: ("POST", "/auth/session_token/login", json_header, session_body(by(ref_creds, inlet_creds)(s)))
    yield "error: login without password", lambda s: ("POST", "/auth/session_token/login", json_header, b'{"username": "x"}')
    yield "error: login wrong password", lambda s: ("POST", "/auth/session_token/login", json_header, b'{"username": "x", "password": "y"}')
    yield "error: login not JSON", lambda s: ("POST", "/auth/session_token/login", {}, b"username=x")
    yield "error: session data without token", lambda s: ("GET", "/auth/session_token/data", {}, None)
    yield "error: session data, bad token", lambda s: ("GET", "/auth/session_token/data", {"Authorization": "Token abc"}, None)
    expired = base64.b64encode(b"a:b:1").decode()
    yield "error: session data, expired token", lambda s: ("GET", "/auth/session_token/data", {"Authorization": "Token " + expired}, None)


def walk_keyset(server):
    pages, rows, path = 0, 0, "/pagination/keyset?updated_since=2024-01-01T00:00:00Z"
    while True:
        _, _, body = server.request("GET", path)
        page = json.loads(body)
        pages, rows = pages + 1, rows + len(page["data"])
        if page["scroll_param"] is None:
            return pages, rows
        path = "/pagination/keyset?scroll_param=" + urllib.parse.quote(page["scroll_param"], safe="")


def walk_offset(server):
    offset, rows, requests = 0, 0, 0
    while True:
        _, _, body = server.request("GET", f"/pagination/offset?order_by=updatedAt&order_type=asc&updated_since=2024-01-01T00:00:00Z&limit=50&offset={offset}")
        page = json.loads(body)
        requests, rows = requests + 1, rows + len(page["data"])
        if offset + len(page["data"]) >= page["total"]:
            return requests, rows
        offset += len(page["data"])


def walk_step(server):
    current, rows, requests = 1, 0, 0
    while True:
        _, _, body = server.request("GET", f"/incremental/step?start_id={current}&end_id={current + 99}")
        requests += 1
        data = json.loads(body)["data"]
        if not data:
            return requests, rows
        rows, current = rows + len(data), current + 100


def session_data_with_token(server, creds):
    user, password = creds["session"]
    _, _, body = server.request("POST", "/auth/session_token/login", {"Content-Type": "application/json"}, json.dumps({"username": user, "password": password}).encode())
    token = json.loads(body)["token"]
    return server.request("GET", "/auth/session_token/data", {"Authorization": "Token " + token})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="path of the reference's `playground` command")
    parser.add_argument("--inlet", required=True, help="path of the inlet binary")
    args = parser.parse_args()

    env = dict(os.environ, HOME=tempfile.mkdtemp())  # the reference's once-a-day version check
    ref = Server("reference", [args.reference, "start", "--port", str(free_port())], env)
    ours = Server("inlet", [args.inlet, "playground", "--port", str(free_port())])
    differences = 0
    try:
        ref_creds, inlet_creds = ref.credentials(), ours.credentials()
        for name, build in cases(ref_creds, inlet_creds):
            answers = []
            for server in (ref, ours):
                method, path, headers, body = build(server)
                status, response_headers, text = server.request(method, path, headers, body)
                answers.append(answer_shape(server, status, response_headers, text))
                if status == 405:
                    allow = {m.strip() for m in response_headers.get("Allow", "").split(",")}
                    answers[-1] = answers[-1] + (sorted(allow),)
            same = answers[0] == answers[1]
            differences += not same
            print(f"{'same' if same else 'DIFF'}  {answers[0][0]} {answers[1][0]}  {name}")
            if not same:
                print(f"      reference: {str(answers[0])[:400]}\n      inlet:     {str(answers[1])[:400]}")
        for name, walk in [("keyset walk (pages, rows)", walk_keyset), ("offset walk (requests, rows)", walk_offset), ("step walk of 100 (requests, rows)", walk_step)]:
            results = walk(ref), walk(ours)
            same = results[0] == results[1]
            differences += not same
            print(f"{'same' if same else 'DIFF'}  {results[0]} {results[1]}  {name}")
        tokens = [answer_shape(s, *session_data_with_token(s, c)) for s, c in ((ref, ref_creds), (ours, inlet_creds))]
        same = tokens[0] == tokens[1]
        differences += not same
        print(f"{'same' if same else 'DIFF'}  {tokens[0][0]} {tokens[1][0]}  session data with a fresh token")
    finally:
        ref.stop()
        ours.stop()

    limited_ref = Server("reference", [args.reference, "start", "--port", str(free_port()), "--rate-limit", "--capacity", "3"], env)
    limited_ours = Server("inlet", [args.inlet, "playground", "--port", str(free_port()), "--rate-limit", "--capacity", "3"])
    try:
        seen = []
        for server in (limited_ref, limited_ours):
            time.sleep(1)  # the readiness probe took a token; let the bucket refill
            rows = []
            for _ in range(5):
                status, headers, _ = server.request("GET", "/incremental/step?start_id=1&end_id=1")
                rows.append((status, headers.get("X-RateLimit-Limit"), headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset"), headers.get("Retry-After")))
            seen.append(rows)
        same = seen[0] == seen[1]
        differences += not same
        print(f"{'same' if same else 'DIFF'}  rate limit, capacity 3, five requests: {seen[1]}")
        if not same:
            print(f"      reference: {seen[0]}")
    finally:
        limited_ref.stop()
        limited_ours.stop()

    print(f"\n{differences} difference(s)")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
