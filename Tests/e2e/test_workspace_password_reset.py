"""Password reset: the request never reveals whether an account exists, links come from the admin CLI
(no SMTP) or by email (SMTP, checked against a small SMTP sink), tokens are single-use, expire after an
hour, and a reset signs the user out everywhere."""

from __future__ import annotations

import os
import re
import socket
import threading

import pytest

import helpers as h
from helpers import assert_error, assert_ok, login

RESET = "/api/v3/auth/password-reset"
CONFIRM = "/api/v3/auth/password-reset/confirm"
OLD_PASSWORD = "reset-Old-Password-5531"
NEW_PASSWORD = "reset-New-Password-9923"
LINK = re.compile(r"^(\S+)/acc/#/reset\?token=([A-Za-z0-9_-]{20,})$")


@pytest.fixture(scope="module")
def member(api, admin):
    email = f"reset-{os.urandom(3).hex()}@example.com"
    inv = assert_ok(api.post("/api/v3/invitations", token=admin.token, json_body={"email": email, "role": "editor"}), 201)
    assert_ok(api.post("/api/v3/auth/invitations/accept", json_body={"token": inv["token"], "password": OLD_PASSWORD}), 201)
    return email


def reset_link(stack, email, base="https://maps.example.com") -> str:
    out = stack.tessera("password-reset-link", "--email", email, "--base-url", base).strip().splitlines()[-1]
    m = LINK.match(out)
    assert m and m.group(1) == base, out
    return m.group(2)


def test_request_answers_the_same_for_any_email(api, stack, member):
    known = api.post(RESET, json_body={"email": member})
    unknown = api.post(RESET, json_body={"email": "nobody-here@example.com"})
    assert known.status == unknown.status == 202
    assert known.body == unknown.body and known.json()["ok"] is True
    # Without SMTP nothing is sent, so no token is created either.
    # (Counted for this user only: other suites on the shared stack create reset links of their own.)
    assert h.metadata(stack, "SELECT count(*) FROM password_resets r JOIN users u ON u.id = r.user_id "
                             f"WHERE u.email = '{member}'") == "0"
    assert_error(api.post(RESET, json_body={"email": "not an email"}), 400, "invalid_email")
    assert_error(api.post(RESET, json_body={}), 400, "missing_parameter")


def test_cli_link_resets_once_and_signs_out(api, stack, member):
    session = login(api, member, OLD_PASSWORD)
    first = reset_link(stack, member)
    token = reset_link(stack, member)  # a newer link replaces the older one
    assert_error(api.post(CONFIRM, json_body={"token": first, "password": NEW_PASSWORD}), 400, "invalid_reset_token")
    # A weak password is refused without using up the token.
    assert_error(api.post(CONFIRM, json_body={"token": token, "password": "short"}), 400, "weak_password")
    r = api.post(CONFIRM, json_body={"token": token, "password": NEW_PASSWORD})
    assert r.status == 204, r
    assert_error(api.get("/api/v3/me", session=session), 401)
    assert_error(api.post(CONFIRM, json_body={"token": token, "password": NEW_PASSWORD + "x"}), 400, "invalid_reset_token")
    assert_error(api.post("/api/v3/auth/login", json_body={"email": member, "password": OLD_PASSWORD}), 401)
    login(api, member, NEW_PASSWORD)
    # Stored as its SHA-256 only.
    assert h.metadata(stack, f"SELECT count(*) FROM password_resets WHERE token_hash = sha256(convert_to('{token}', 'UTF8'))") == "1"


def test_expired_and_unknown_tokens(api, stack, member):
    token = reset_link(stack, member)
    h.metadata(stack, "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
    assert_error(api.post(CONFIRM, json_body={"token": token, "password": NEW_PASSWORD}), 400, "invalid_reset_token")
    assert_error(api.post(CONFIRM, json_body={"token": "nope", "password": NEW_PASSWORD}), 400, "invalid_reset_token")
    assert_error(api.post(CONFIRM, json_body={"password": NEW_PASSWORD}), 400, "missing_parameter")


def test_cli_unknown_user(stack):
    r = h.tessera(stack, "password-reset-link", "--email", "nobody-here@example.com", check=False)
    assert r.returncode != 0 and "no user" in r.stderr


class SMTPSink:
    """Just enough SMTP for curl: records each message's envelope and data."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.messages: list[dict] = []
        self.received = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")
        msg = {"rcpt": [], "data": ""}

        def say(line):
            conn.sendall(line.encode() + b"\r\n")

        say("220 sink ready")
        while line := f.readline():
            cmd = line.decode().strip()
            verb = cmd.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250 sink")
            elif verb == "MAIL":
                msg["from"] = cmd
                say("250 ok")
            elif verb == "RCPT":
                msg["rcpt"].append(cmd)
                say("250 ok")
            elif verb == "DATA":
                say("354 end with .")
                data = []
                while (chunk := f.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode())
                msg["data"] = "".join(data)
                self.messages.append(msg)
                self.received.set()
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                break
            else:
                say("250 ok")
        conn.close()

    def close(self):
        self.server.close()


@pytest.fixture(scope="module")
def smtp_stack(request, stack):
    sink = SMTPSink()
    s = h.boot_stack("smtp", {"TESSERA_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?from=noreply@maps.example.com",
                              "TESSERA_PUBLIC_URL": "https://maps.example.com"}, apis=("workspace-api",))
    s.sink = sink
    try:
        yield s
    finally:
        sink.close()
        h.finish_stack(s, keep=bool(request.session.testsfailed))


def test_reset_by_email(smtp_stack):
    api, sink = h.Api(smtp_stack), smtp_stack.sink
    assert assert_ok(api.get("/api/v3/workspace/config"))["smtp"] is True
    unknown = api.post(RESET, json_body={"email": "nobody-here@example.com"})
    r = api.post(RESET, json_body={"email": smtp_stack.admin_email})
    assert r.status == unknown.status == 202 and r.body == unknown.body
    assert sink.received.wait(30), "no email arrived"
    assert len(sink.messages) == 1, sink.messages  # nothing was sent for the unknown address
    mail = sink.messages[0]
    assert "noreply@maps.example.com" in mail["from"] and smtp_stack.admin_email in mail["rcpt"][0]
    assert "Subject: Reset your Tessera password" in mail["data"]
    m = re.search(r"https://maps\.example\.com/acc/#/reset\?token=([A-Za-z0-9_-]+)", mail["data"])
    assert m, mail["data"]
    # A second request within a minute sends nothing more (and still answers the same).
    assert api.post(RESET, json_body={"email": smtp_stack.admin_email}).body == r.body
    assert h.metadata(smtp_stack, "SELECT count(*) FROM password_resets") == "1"
    assert api.post(CONFIRM, json_body={"token": m.group(1), "password": NEW_PASSWORD}).status == 204
    login(api, smtp_stack.admin_email, NEW_PASSWORD)
    assert len(sink.messages) == 1
