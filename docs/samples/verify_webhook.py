"""Verifies Kassa webhooks (Standard Webhooks signatures) with the Python standard library only.

    KASSA_WEBHOOK_SECRET=whsec_... PORT=4242 python3 verify_webhook.py
"""
import base64
import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

TOLERANCE_SECONDS = 5 * 60


def verify_kassa_webhook(secret, headers, raw_body, now=None):
    """Returns the parsed event or raises ValueError. raw_body: the bytes exactly as received."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise ValueError("missing webhook-id, webhook-timestamp or webhook-signature")
    now = int(time.time()) if now is None else now
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise ValueError("timestamp outside the 5 minute window")
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in signatures.split(" "):  # several during a secret rotation
        version, _, value = entry.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return json.loads(raw_body)
    raise ValueError("no valid signature")


class Handler(BaseHTTPRequestHandler):
    seen = set()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            event = verify_kassa_webhook(os.environ["KASSA_WEBHOOK_SECRET"], self.headers, body)
        except ValueError as err:
            print("rejected:", err)
            self.send_response(400)
            self.end_headers()
            return
        if event["id"] not in self.seen:  # redeliveries carry the same id
            self.seen.add(event["id"])
            print("verified", event["id"], event["type"], event["data"]["object"]["id"])
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "4242"))), Handler).serve_forever()
