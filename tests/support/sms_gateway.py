#!/usr/bin/env python3
"""An HTTP SMS gateway for the Message Center end-to-end tests.

    python3 tests/support/sms_gateway.py --port P --out FILE [--attempts FILE]

Port 0 picks a free port. Once listening it prints exactly one line on stdout:

    sms-gateway ready port=<port>

``POST /sms`` with a JSON body ``{"to","text","from","eventId"}``; behaviour by ``to``:
  * ends with ``400`` -> 400 ``{"error":"invalid number"}``
  * ends with ``500`` -> 500 ``{"error":"gateway failure"}``
  * anything else     -> 200 ``{"id":"<uuid>"}`` and ONE JSON line appended to ``--out`` (flushed):
    ``{"to","text","from","eventId","id","receivedAt","authorization"}``

A body that is not a JSON object answers 400 ``{"error":"invalid json"}``; another path 404.
``--attempts`` (optional) gets one JSON line per request, whatever the answer:
``{"path","to","eventId","status","authorization","at"}``: how a test counts retries.
"""

import argparse
import datetime
import json
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


class JsonLines:
    """Appends JSON lines to a file from many threads, flushing each one."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8") if path else None

    def write(self, record):
        if self.file is None:
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.lock:
            self.file.write(line)
            self.file.flush()


class Gateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client may pool connections
    server_version = "TestSmsGateway/1.0"
    out = None
    attempts = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        sys.stderr.write("sms-gateway %s - %s\n" % (self.address_string(), format % args))

    def answer(self, status, body):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self):
        self.answer(404, {"error": "not found"})

    def do_POST(self):
        raw = self.read_body()
        authorization = self.headers.get("Authorization")
        path = self.path.split("?", 1)[0]
        try:
            payload = json.loads(raw.decode("utf-8"))
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            payload = None
        to = payload.get("to") if payload else None
        event_id = payload.get("eventId") if payload else None

        if path != "/sms":
            status, body = 404, {"error": "not found"}
        elif payload is None:
            status, body = 400, {"error": "invalid json"}
        elif str(to).endswith("400"):
            status, body = 400, {"error": "invalid number"}
        elif str(to).endswith("500"):
            status, body = 500, {"error": "gateway failure"}
        else:
            message_id = str(uuid.uuid4())
            status, body = 200, {"id": message_id}
            self.out.write(
                {
                    "to": to,
                    "text": payload.get("text"),
                    "from": payload.get("from"),
                    "eventId": event_id,
                    "id": message_id,
                    "receivedAt": now_rfc3339(),
                    "authorization": authorization,
                }
            )
        self.attempts.write(
            {
                "path": path,
                "to": to,
                "eventId": event_id,
                "status": status,
                "authorization": authorization,
                "at": now_rfc3339(),
            }
        )
        self.answer(status, body)


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--attempts")
    args = parser.parse_args()

    Gateway.out = JsonLines(args.out)
    Gateway.attempts = JsonLines(args.attempts)
    try:
        server = Server((args.host, args.port), Gateway)
    except OSError as error:
        print(f"sms-gateway cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"sms-gateway ready port={server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
