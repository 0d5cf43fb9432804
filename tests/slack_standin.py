"""A local HTTP stand-in for the Slack Web API, and a client that talks to the bot as Slack does.

`SlackStandIn` answers auth.test, chat.postMessage, chat.update, chat.postEphemeral and
usergroups.users.list the way Slack does (ts values, ok/error bodies, bearer-token check) and
records every call, plus posts to the response_urls it hands out. It keeps each message's
current blocks, so a test can tap the very button a user would see.

File uploads follow Slack's external-upload flow (what `files_upload_v2` does):
files.getUploadURLExternal hands out an `upload_url` on this server, the bytes are POSTed
there, and files.completeUploadExternal shares the file into a channel or thread.
`refuse(method, error)` makes a method answer an error (say `missing_scope`) instead.

`SlackSender` builds signed requests: slash commands as form posts, `block_actions` payloads
shaped like Slack's, with the v0 signature over the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-test-token"  # Socket Mode's app-level token: only apps.connections.open takes it
SIGNING_SECRET = "test-signing-secret"
TEAM = "T0TEAM001"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.time)


@dataclass
class Upload:
    """One file: announced (getUploadURLExternal), its bytes, and where it was shared (completeUploadExternal)."""

    file_id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str = ""
    channel_id: str = ""
    thread_ts: str = ""
    initial_comment: str = ""
    shared: bool = False

    @property
    def text(self) -> str:
        return (self.content or b"").decode("utf-8")


class SlackStandIn:
    def __init__(self, groups: dict[str, list[str]] | None = None) -> None:
        self.calls: list[Call] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.groups = groups or {}
        self.uploads: dict[str, Upload] = {}
        self.refusals: dict[str, dict[str, Any]] = {}
        self.homes: dict[str, dict[str, Any]] = {}  # user id -> the Home tab view last published for them
        #: Socket Mode: hands out a ws:// URL of tests/socket_standin.py for apps.connections.open.
        self.socket_url: Callable[[], str] | None = None
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def start(self) -> SlackStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- what tests read -------------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        """Poll until `predicate()` is truthy; generous deadline, no timing asserted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; calls: {[c.method for c in self.calls][-30:]}")

    def posts_in_thread(self, thread_ts: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages.values() if m.get("thread_ts") == thread_ts]

    def refuse(self, method: str, error: str, **fields: str) -> None:
        """From now on, answer `method` with `{"ok": false, "error": error, **fields}`.

        `refuse("files.getUploadURLExternal", "missing_scope", needed="files:write")` is an app
        installed without that scope.
        """
        with self._lock:
            self.refusals[method] = {"ok": False, "error": error, **fields}

    def uploaded_files(self, thread_ts: str | None = None) -> list[Upload]:
        """Files shared with completeUploadExternal (in `thread_ts`'s thread, if given), oldest first."""
        with self._lock:
            return [u for u in self.uploads.values() if u.shared and (thread_ts is None or u.thread_ts == thread_ts)]

    def private_to(self, user: str) -> list[str]:
        """Ephemeral texts a user was shown (chat.postEphemeral and response_url posts)."""
        with self._lock:
            return [c.args.get("text", "") for c in self.calls
                    if (c.method == "chat.postEphemeral" and c.args.get("user") == user)
                    or (c.method == "response_url" and c.args.get("_user") == user)]

    # ---- the server --------------------------------------------------------------------------

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def answer(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        if method == "response_url":
            return {"ok": True}
        if method == "apps.connections.open":  # https://api.slack.com/methods/apps.connections.open
            if token != APP_TOKEN or self.socket_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url()}
        if token != BOT_TOKEN:
            return {"ok": False, "error": "invalid_auth"}
        if method in self.refusals:
            return dict(self.refusals[method])
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "migrate-bot",
                    "team_id": TEAM, "user_id": "U0BOT0001", "bot_id": "B0BOT0001", "is_enterprise_install": False}
        if method == "usergroups.users.list":
            group = args.get("usergroup", "")
            if group not in self.groups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.groups[group]}
        if method == "chat.postMessage":
            ts = self.next_ts()
            msg = {"ts": ts, "channel": args["channel"], "text": args.get("text", ""), "blocks": _blocks(args),
                   "thread_ts": args.get("thread_ts")}
            self.messages[ts] = msg
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": {**msg, "type": "message"}}
        if method == "chat.update":
            msg = self.messages.get(args.get("ts", ""))
            if msg is None or msg["channel"] != args.get("channel"):
                return {"ok": False, "error": "message_not_found"}
            msg.update(text=args.get("text", ""), blocks=_blocks(args))
            return {"ok": True, "channel": msg["channel"], "ts": msg["ts"], "text": msg["text"]}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "files.getUploadURLExternal":
            return self._upload_url(args)
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        if method == "views.publish":
            return self._publish_home(args)
        return {"ok": False, "error": "unknown_method"}

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename, length = args.get("filename", ""), str(args.get("length", ""))
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F0FILE{next(self._file_ids):05d}"
        self.uploads[file_id] = Upload(file_id, filename, int(length))
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The POST to an upload_url: Slack answers `OK - <bytes>` in plain text."""
        upload = self.uploads.get(file_id)
        if upload is None:
            return 404, "Not Found"
        upload.content = data
        return 200, f"OK - {len(data)}"

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(args.get("files") or "[]")
        except json.JSONDecodeError:
            return {"ok": False, "error": "invalid_arguments"}
        found = [self.uploads.get(f.get("id", "")) for f in files]
        if not files or any(u is None or u.content is None for u in found):
            return {"ok": False, "error": "file_not_found"}
        channel, thread_ts = args.get("channel_id", ""), args.get("thread_ts", "")
        if thread_ts and not channel:
            return {"ok": False, "error": "invalid_arguments"}
        answer = []
        for f, u in zip(files, found, strict=True):
            assert u is not None
            u.title, u.channel_id, u.thread_ts = f.get("title") or u.filename, channel, thread_ts
            u.initial_comment, u.shared = args.get("initial_comment", ""), True
            answer.append({"id": u.file_id, "title": u.title, "name": u.filename, "size": len(u.content or b"")})
        if channel:  # Slack shares the files as one message, carrying the initial comment
            ts = self.next_ts()
            self.messages[ts] = {"ts": ts, "channel": channel, "text": args.get("initial_comment", ""), "blocks": [],
                                 "thread_ts": thread_ts or None, "files": answer}
        return {"ok": True, "files": answer}

    def _publish_home(self, args: dict[str, Any]) -> dict[str, Any]:
        """views.publish: a Home tab per user. Slack refuses a view past its limits with invalid_arguments
        (docs.slack.dev/reference/views/home-tab-views: at most 100 blocks; reference/block-kit/blocks:
        section text at most 3,000 characters, a header's 150, a context at most 10 elements)."""
        view = args.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not args.get("user_id") or not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        blocks = view.get("blocks") or []
        too_long = [b for b in blocks if (b.get("type") == "section" and len(b["text"]["text"]) > 3000)
                    or (b.get("type") == "header" and len(b["text"]["text"]) > 150)
                    or (b.get("type") == "context" and len(b["elements"]) > 10)]
        if len(blocks) > 100 or too_long:
            return {"ok": False, "error": "invalid_arguments"}
        self.homes[args["user_id"]] = view
        return {"ok": True, "view": {"id": f"V{len(self.homes):08d}", "type": "home", "blocks": blocks}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/upload/"):
                    file_id = self.path.split("/")[2]
                    with standin._lock:
                        standin.calls.append(Call("upload", {"file_id": file_id, "bytes": len(data)}))
                        status, text = standin.receive_upload(file_id, data)
                    self.reply(status, text.encode(), "text/plain; charset=utf-8")
                    return
                raw = data.decode()
                if self.path.startswith("/response/"):
                    method, token = "response_url", ""
                    args = json.loads(raw or "{}")
                    args["_user"] = urllib.parse.unquote(self.path.split("/")[2])
                else:
                    method = self.path.removeprefix("/api/")
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                    if self.headers.get("Content-Type", "").startswith("application/json"):
                        args = json.loads(raw or "{}")
                    else:
                        args = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                with standin._lock:
                    standin.calls.append(Call(method, args))
                    body = standin.answer(method, args, token)
                self.reply(200, json.dumps(body).encode(), "application/json; charset=utf-8")

            def reply(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) if b.get("type") == "actions" for e in b["elements"]]


def sign(body: str, *, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    status: int
    body: str
    sent: dict[str, str]


class SlackSender:
    """Sends what Slack would send to the bot's /slack/events, signed unless told otherwise."""

    def __init__(self, bot_url: str, standin: SlackStandIn, *, channel: str = "C0MIGRATE1") -> None:
        self.bot_url, self.standin, self.channel = bot_url, standin, channel
        self._n = itertools.count(1)

    def post(self, body: str, content_type: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET,
             headers: dict[str, str] | None = None, signed: bool = True) -> Reply:
        ts = int(time.time()) if timestamp is None else timestamp
        sent = {"Content-Type": content_type}
        if signed:
            sent |= {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, timestamp=ts, secret=secret)}
        sent |= headers or {}
        return self.send(body, sent)

    def send(self, body: str, headers: dict[str, str]) -> Reply:
        req = urllib.request.Request(self.bot_url + "/slack/events", data=body.encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Reply(resp.status, resp.read().decode(), headers)
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read().decode(), headers)

    def command_body(self, user: str, text: str, *, channel: str | None = None) -> str:
        n = next(self._n)
        return urllib.parse.urlencode({
            "token": "verification-token-unused", "team_id": TEAM, "team_domain": "test",
            "channel_id": channel or self.channel, "channel_name": "migrations", "user_id": user,
            "user_name": user.lower(), "command": "/migrate", "text": text, "api_app_id": "A0APP0001",
            "is_enterprise_install": "false", "response_url": f"{self.standin.url}/response/{user}/{n}",
            "trigger_id": f"{n}.{int(time.time())}.{hashlib.sha1(text.encode()).hexdigest()[:12]}",
        })

    def command(self, user: str, text: str, **kw: Any) -> Reply:
        channel = kw.pop("channel", None)
        return self.post(self.command_body(user, text, channel=channel), "application/x-www-form-urlencoded", **kw)

    def tap_body(self, user: str, message: dict[str, Any], action_id: str) -> str:
        button = next(b for b in buttons(message) if b["action_id"] == action_id)
        block = next(b for b in message["blocks"] if b.get("type") == "actions" and button in b["elements"])
        msg = {"type": "message", "user": "U0BOT0001", "ts": message["ts"], "text": message["text"],
               "blocks": message["blocks"]}
        if message.get("thread_ts"):
            msg["thread_ts"] = message["thread_ts"]
        payload = {
            "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "A0APP0001", "token": "verification-token-unused",
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"],
                          "is_ephemeral": False},
            "trigger_id": f"{next(self._n)}.{int(time.time())}.tap", "team": {"id": TEAM, "domain": "test"},
            "channel": {"id": message["channel"], "name": "migrations"}, "message": msg,
            "response_url": f"{self.standin.url}/response/{user}/{next(self._n)}",
            "actions": [{"action_id": action_id, "block_id": block.get("block_id", "b"), "text": button["text"],
                         "value": button.get("value", ""), "style": button.get("style"), "type": "button",
                         "action_ts": f"{time.time():.6f}"}],
        }
        return urllib.parse.urlencode({"payload": json.dumps(payload)})

    def tap(self, user: str, message: dict[str, Any], action_id: str, **kw: Any) -> Reply:
        return self.post(self.tap_body(user, message, action_id), "application/x-www-form-urlencoded", **kw)
