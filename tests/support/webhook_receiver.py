#!/usr/bin/env python3
"""A Standard Webhooks receiver for the Message Center webhook tests.

    python3 tests/support/webhook_receiver.py --port P --out FILE [--attempts FILE] [--secret whsec_…]

Port 0 picks a free port. Once listening it prints exactly one line on stdout:

    webhook-receiver ready port=<port>

Every POST is verified with the Standard Webhooks reference library (``standardwebhooks`` on PyPI,
``Webhook(secret).verify(body, headers)``) under the secret of its endpoint, then answered by its path, and
ONE JSON line is appended to ``--out`` (flushed) before the answer is written:
``{"path","endpoint","behaviour","headers","webhookId","webhookTimestamp","verified","error","body","raw",
"attempt","status","at"}`` — ``verified`` is true only when the library accepted the request, ``error`` is
the library's message otherwise, ``body`` the parsed JSON (null if it is not JSON), ``attempt`` the number
of requests of that webhook-id to that path so far (1 for the first), ``status`` the status it answers,
``at`` the Unix time of arrival (float).

Paths are ``/<endpoint>/<behaviour>`` or just ``/<behaviour>``; ``<endpoint>`` chooses the secret (see
``POST /secrets/<endpoint>``), the default secret (``--secret``) verifies the rest. Behaviours:
  * ``ok``              -> 204
  * ``fail/<n>``        -> 500 for the first n attempts of each webhook-id, then 200
  * ``gone``            -> 410
  * ``busy/<secs>``     -> 503 with ``Retry-After: <secs>`` at the first attempt of each webhook-id, then 200
  * ``slow/<secs>``     -> sleeps that long, then 200
  * ``huge``            -> 200 with an 8 MiB body
  * ``garbage``         -> bytes that are not HTTP, then the connection closes
  * ``redirect``        -> 302 to the same endpoint's ``ok`` (a client must not follow it)
  * anything else       -> 404
``POST /secrets/<endpoint>`` with the secret as its body sets that endpoint's secret (204, not recorded);
``GET /received`` answers every record so far as a JSON array.
"""

import argparse
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

BEHAVIOURS = {"ok", "fail", "gone", "busy", "slow", "huge", "garbage", "redirect"}
HUGE_BYTES = 8 * 1024 * 1024


class Records:
    """The JSON-lines file of every request, and the per-(path, webhook-id) attempt counters."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8")
        self.all = []
        self.counts = {}

    def count(self, path, webhook_id):
        with self.lock:
            key = (path, webhook_id)
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def write(self, record):
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.lock:
            self.all.append(record)
            self.file.write(line)
            self.file.flush()


def split_path(path):
    """``(endpoint or None, behaviour, argument or None)`` of a request path."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    endpoint = None
    # `/<endpoint>/<behaviour>…` when the second segment is a behaviour (an endpoint may be named like
    # one: `/busy/busy/3`), `/<behaviour>…` when the first one is and the second is not.
    if parts and (parts[0] not in BEHAVIOURS or (len(parts) > 1 and parts[1] in BEHAVIOURS)):
        endpoint, parts = parts[0], parts[1:]
    behaviour = parts[0] if parts else ""
    argument = parts[1] if len(parts) > 1 else None
    return endpoint, behaviour, argument


def verify(secret, raw, headers):
    """``(verified, error)`` by the reference library."""
    if secret is None:
        return False, "no secret known for this endpoint"
    try:
        Webhook(secret).verify(raw, headers)
        return True, None
    except Exception as error:  # noqa: BLE001 - every failure is a verdict to record
        return False, f"{type(error).__name__}: {error}"


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TestWebhookReceiver/1.0"
    records = None
    secrets = {}
    default_secret = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write("webhook-receiver %s - %s\n" % (self.address_string(), format % args))

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/received":
            with self.records.lock:
                data = json.dumps(self.records.all).encode("utf-8")
            self.answer(200, data, [("Content-Type", "application/json")])
        else:
            self.answer(404, b"not found")

    def do_POST(self):
        arrived = time.time()
        raw = self.read_body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/secrets/"):
            Receiver.secrets[path[len("/secrets/") :]] = raw.decode("utf-8").strip()
            self.answer(204)
            return
        endpoint, behaviour, argument = split_path(path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        secret = Receiver.secrets.get(endpoint, Receiver.default_secret) if endpoint else Receiver.default_secret
        verified, error = verify(secret, raw, headers)
        webhook_id = headers.get("webhook-id")
        attempt = self.records.count(path, webhook_id)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None

        extra = []
        payload = b""
        if behaviour == "ok":
            status = 204
        elif behaviour == "fail":
            status = 500 if attempt <= int(argument or 1) else 200
        elif behaviour == "gone":
            status = 410
        elif behaviour == "busy":
            status = 503 if attempt == 1 else 200
            if status == 503:
                extra.append(("Retry-After", str(int(argument or 1))))
        elif behaviour == "slow":
            status = 200
        elif behaviour == "huge":
            status = 200
        elif behaviour == "garbage":
            status = None
        elif behaviour == "redirect":
            status = 302
            target = f"/{endpoint}/ok" if endpoint else "/ok"
            extra.append(("Location", target))
        else:
            status = 404
        self.records.write(
            {
                "path": path,
                "endpoint": endpoint,
                "behaviour": behaviour,
                "headers": headers,
                "webhookId": webhook_id,
                "webhookTimestamp": headers.get("webhook-timestamp"),
                "verified": verified,
                "error": error,
                "body": body,
                "raw": base64.b64encode(raw).decode("ascii"),
                "attempt": attempt,
                "status": status,
                "at": arrived,
            }
        )
        if behaviour == "slow":
            time.sleep(float(argument or 1))
            self.answer(200, b"late")
        elif behaviour == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(HUGE_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client stopped reading: what a bounded reader does
        elif behaviour == "garbage":
            self.wfile.write(b"\x00\xffNOT HTTP AT ALL\r\n\x13\x37garbage garbage\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
        else:
            self.answer(status, b"" if status == 204 else b"{\"received\":true}", extra)


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--attempts", help="accepted for the harness; every request goes to --out")
    parser.add_argument("--secret")
    args = parser.parse_args()

    Receiver.records = Records(args.out)
    Receiver.default_secret = args.secret
    try:
        server = Server((args.host, args.port), Receiver)
    except OSError as error:
        print(f"webhook-receiver cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"webhook-receiver ready port={server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
