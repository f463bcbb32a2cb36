#!/usr/bin/env python3
"""A real SMTP server for the Message Center end-to-end tests (aiosmtpd).

    python3 tests/support/smtp_server.py --port P --out FILE [--attempts FILE] [--data-delay-ms MS]
        [--tls-cert PEM --tls-key PEM (--starttls | --smtps)] [--auth USER:PASSWORD]

Port 0 picks a free port. Once listening it prints exactly one line on stdout:

    smtp-server ready port=<port>

Behaviour by the local part of each recipient (RCPT TO):
  * starts with ``reject``   -> ``550 5.1.1 mailbox unavailable``
  * starts with ``tempfail`` -> ``451 4.3.0 try again later``
  * starts with ``tempfirst`` -> ``451 4.3.0 try again later`` at its first RCPT, accepted after
  * anything else            -> accepted

Every accepted message appends ONE JSON line to ``--out`` (flushed at once):
``{"mailFrom","rcptTos","subject","messageId","text","html","from","to","receivedAt","raw","tls","auth"}``,
where ``text`` and ``html`` are the decoded text/plain and text/html parts (null when absent), with CRLF
turned into LF, ``raw`` the message exactly as received (for DKIM verification), ``tls`` whether the session
was encrypted and ``auth`` the user it authenticated as (null when none).

``--starttls`` offers STARTTLS and refuses MAIL before it; ``--smtps`` speaks TLS from the first byte (both
with ``--tls-cert``/``--tls-key``); ``--auth USER:PASSWORD`` requires AUTH (PLAIN or LOGIN) with those
credentials before MAIL (``535`` for others).

``--attempts`` (optional) gets one JSON line per RCPT command, accepted or not:
``{"mailFrom","rcpt","code","at"}``: how a test counts delivery attempts to refused addresses.

``--data-delay-ms`` (optional) waits that long before answering the end of DATA: slows delivery down so
that a test can interrupt the sender in the middle of a run.

Many messages per connection and many concurrent connections are fine (asyncio).
"""

import argparse
import asyncio
import datetime
import email
import email.policy
import json
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def local_part(address):
    address = address.strip().strip("<>")
    return address.rsplit("@", 1)[0].lower()


class JsonLines:
    """Appends JSON lines to a file, flushing each one (a single asyncio thread writes)."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, record):
        if self.file is None:
            return
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.file.flush()


def header(message, name):
    value = message.get(name)
    return None if value is None else str(value)


def bodies(message):
    """The first inline text/plain and text/html parts, decoded."""
    text = None
    html = None
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            continue
        content_type = part.get_content_type()
        try:
            content = part.get_content()
        except Exception as error:  # noqa: BLE001 - a broken part is recorded, not fatal
            content = f"<undecodable part: {error}>"
        if isinstance(content, str):
            content = content.replace("\r\n", "\n")
        if content_type == "text/plain" and text is None:
            text = content
        elif content_type == "text/html" and html is None:
            html = content
    return text, html


class Handler:
    def __init__(self, out, attempts, data_delay):
        self.out = out
        self.attempts = attempts
        self.data_delay = data_delay
        self.tempfailed_once = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = local_part(address)
        if local.startswith("reject"):
            reply = "550 5.1.1 mailbox unavailable"
        elif local.startswith("tempfail"):
            reply = "451 4.3.0 try again later"
        elif local.startswith("tempfirst") and address.lower() not in self.tempfailed_once:
            self.tempfailed_once.add(address.lower())
            reply = "451 4.3.0 try again later"
        else:
            envelope.rcpt_tos.append(address)
            reply = "250 OK"
        self.attempts.write(
            {
                "mailFrom": envelope.mail_from,
                "rcpt": address,
                "code": int(reply[:3]),
                "at": now_rfc3339(),
            }
        )
        return reply

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay > 0:
            await asyncio.sleep(self.data_delay)
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        text, html = bodies(message)
        self.out.write(
            {
                "mailFrom": envelope.mail_from,
                "rcptTos": list(envelope.rcpt_tos),
                "subject": header(message, "Subject"),
                "messageId": header(message, "Message-ID"),
                "text": text,
                "html": html,
                "from": header(message, "From"),
                "to": header(message, "To"),
                "receivedAt": now_rfc3339(),
                "raw": raw.decode("utf-8", "replace"),
                "tls": session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
                "auth": session.auth_data if session.authenticated else None,
            }
        )
        return "250 2.0.0 OK: queued"


def authenticator_for(credentials):
    """An aiosmtpd authenticator accepting exactly ``USER:PASSWORD``."""
    user, _, password = credentials.partition(":")

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    return authenticate


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--attempts")
    parser.add_argument("--data-delay-ms", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--smtps", action="store_true")
    parser.add_argument("--auth")
    args = parser.parse_args()

    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    auth = {}
    if args.auth:
        auth = dict(
            authenticator=authenticator_for(args.auth),
            auth_required=True,
            # After STARTTLS when it is offered; with --smtps the whole session is TLS already (aiosmtpd
            # does not count implicit TLS as such).
            auth_require_tls=bool(args.starttls),
        )

    handler = Handler(JsonLines(args.out), JsonLines(args.attempts), args.data_delay_ms / 1000.0)
    loop = asyncio.get_running_loop()

    def factory():
        return SMTP(
            handler,
            hostname="smtp-test.localhost",
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="message-center test SMTP server",
            tls_context=context if args.starttls else None,
            require_starttls=args.starttls,
            **auth,
        )

    try:
        server = await loop.create_server(
            factory,
            host=args.host,
            port=args.port,
            reuse_address=True,
            ssl=context if args.smtps else None,
        )
    except OSError as error:
        print(f"smtp-server cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    port = server.sockets[0].getsockname()[1]
    print(f"smtp-server ready port={port}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
