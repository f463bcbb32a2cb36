#!/usr/bin/env python3
"""Verifies the DKIM signature of a message with dkimpy, an implementation independent of ours.

    python3 tests/support/dkim_verify.py SELECTOR DOMAIN TXT < message

The key is not looked up in DNS: ``SELECTOR._domainkey.DOMAIN`` answers ``TXT`` (``v=DKIM1; k=...; p=...``),
any other name nothing. Prints one JSON line ``{"ok","d","s","a","c","h"}`` (the signature's tags) and
exits 0 when the signature verifies, 1 when it does not.
"""

import json
import sys

import dkim


def main():
    selector, domain, txt = sys.argv[1], sys.argv[2], sys.argv[3]
    message = sys.stdin.buffer.read()
    wanted = f"{selector}._domainkey.{domain}.".lower()

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return txt.encode() if name.lower().rstrip(".") + "." == wanted else None

    ok = dkim.verify(message, dnsfunc=dnsfunc)
    tags = {}
    headers, _body = dkim.rfc822_parse(message)
    for line in headers:
        if line[0].lower() == b"dkim-signature":
            tags = dkim.util.parse_tag_value(line[1])
    print(
        json.dumps(
            {
                "ok": bool(ok),
                **{k: tags.get(k.encode(), b"").decode() for k in ("d", "s", "a", "c", "h")},
            }
        ),
        flush=True,
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
