"""A test receiver for scripts/check-webhook-examples.sh: stores each POSTed delivery as a
directory (one file per webhook-* header, and the body) and answers 204."""

import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

OUT = Path(sys.argv[2])


class Receiver(BaseHTTPRequestHandler):
    count = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        Receiver.count += 1
        directory = OUT / f"delivery-{Receiver.count:03d}"
        directory.mkdir(parents=True)
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            (directory / name).write_text(self.headers.get(name, ""))
        (directory / "body").write_bytes(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
