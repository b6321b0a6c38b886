#!/usr/bin/env python3
"""A fast local webhook receiver for bench/webhooks.sh (asyncio, HTTP/1.1 keep-alive).

POST (any path): records arrival time, `webhook-id` and the event's `at`, answers 200 — or,
while in hold mode, 503 with `Retry-After: <HTTP date>` (every held delivery then becomes
due at that same instant, which builds a backlog to measure the delivery rate on).
GET /mode?ok | /mode?hold=<unix seconds>: switches mode. GET /stats: JSON counts.
GET /dump?path=<file>: writes the recorded 2xx arrivals as TSV (arrival, at, id) and clears them.

    python3 bench/webhook_receiver.py PORT
"""
import asyncio
import email.utils
import json
import sys
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

records = []  # (arrival unix seconds, event at unix seconds, webhook-id)
state = {"hold_until": None, "held": 0, "ok": 0}


def event_at(body: bytes) -> float:
    try:
        event = json.loads(body)
        at = event.get("occurred_at") or event["at"]
        head, _, frac = at.rstrip("Z").partition(".")
        base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        return base.timestamp() + (float("0." + frac) if frac else 0.0)
    except Exception:  # noqa: BLE001 - a bad body counts as no timestamp
        return float("nan")


def respond(status: str, body: bytes = b"", extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\ncontent-length: {len(body)}\r\n{extra}\r\n").encode() + body


def handle_get(target: str) -> bytes:
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    if url.path == "/mode":
        state["hold_until"] = float(query["hold"][0]) if "hold" in query else None
    elif url.path == "/dump":
        with open(query["path"][0], "w") as out:
            for arrival, at, wid in records:
                out.write(f"{arrival:.6f}\t{at:.6f}\t{wid}\n")
        records.clear()
    stats = dict(state, recorded=len(records))
    return respond("200 OK", json.dumps(stats).encode(), "content-type: application/json\r\n")


def handle_post(headers: dict, body: bytes) -> bytes:
    now = time.time()
    hold = state["hold_until"]
    if hold is not None and now < hold:
        state["held"] += 1
        date = email.utils.formatdate(hold, usegmt=True)
        return respond("503 Service Unavailable", b"", f"retry-after: {date}\r\n")
    state["ok"] += 1
    records.append((now, event_at(body), headers.get("webhook-id", "")))
    return respond("200 OK")


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            answer = handle_get(target) if method == "GET" else handle_post(headers, body)
            writer.write(answer)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
