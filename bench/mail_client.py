"""POSTs generated mail to a Stageflow mail channel from concurrent clients (bench/mail-intake.sh).

    python3 bench/mail_client.py BASE TOKEN CHANNEL small|large COUNT CLIENTS LABEL

Prints "msgs/s p50 p99 outcomes" on one line: the rate over the whole run (first request sent
to last answer), latencies per request, and the outcome counts (status of each message, or
the HTTP status when it was not 200/202).
"""

import base64
import collections
import concurrent.futures
import email.header
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

BODY_LINE = "いつもお世話になっております。社内ネットワークのプリンタが印刷できなくなりました。"


def message(case, n, label):
    sender = f"bench-{label}-{case}-{n}@example.co.jp"
    subject = email.header.Header(f"プリンタ障害のご連絡 {n}", "utf-8").encode()
    # ~2 KB of Japanese text (UTF-8, base64 in the message).
    text = "\r\n".join([BODY_LINE] * 16).encode()
    body = base64.encodebytes(text).decode().replace("\n", "\r\n")
    head = (
        f"From: =?UTF-8?B?5bGx55Sw?= <{sender}>\r\n"
        "To: bench@example.co.jp\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <bench-{label}-{case}-{n}-{time.time_ns()}@example.co.jp>\r\n"
        "Date: Sat, 28 Nov 2026 10:00:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if case == "small":
        return (
            head
            + "Content-Type: text/plain; charset=UTF-8\r\n"
            + "Content-Transfer-Encoding: base64\r\n\r\n"
            + body
        ).encode()
    name = email.header.Header("障害ログ.bin", "utf-8").encode()
    attachment = base64.encodebytes(os.urandom(1024 * 1024)).decode().replace("\n", "\r\n")
    return (
        head
        + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        + "--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + body
        + "\r\n--b1\r\n"
        + f'Content-Type: application/octet-stream; name="{name}"\r\n'
        + f'Content-Disposition: attachment; filename="{name}"\r\n'
        + "Content-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + "\r\n--b1--\r\n"
    ).encode()


def main():
    base, token, channel, case, count, clients, label = sys.argv[1:8]
    count, clients = int(count), int(clients)
    target = urllib.parse.urlsplit(base)
    path = f"/api/v1/mail-channels/{channel}/messages"
    # Generated before the clock starts: the client's work is not measured.
    bodies = [message(case, n, label) for n in range(count)]
    local = threading.local()

    def post(raw):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        started = time.perf_counter()
        local.conn.request(
            "POST",
            path,
            raw,
            {"authorization": "Bearer " + token, "content-type": "message/rfc822"},
        )
        reply = local.conn.getresponse()
        data = reply.read()
        elapsed = time.perf_counter() - started
        if reply.status in (200, 202):
            answer = json.loads(data)
            if answer["status"] not in ("filed", "pending") and not getattr(local, "told", False):
                local.told = True
                print(answer["status"], answer.get("reason"), file=sys.stderr)
            return elapsed, answer["status"]
        return elapsed, f"http{reply.status}"

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(post, bodies))
    total = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    outcomes = collections.Counter(r[1] for r in results)
    shown = ",".join(f"{k}:{v}" for k, v in sorted(outcomes.items()))
    print(f"{count / total:.1f} {q(0.5):.0f}ms {q(0.99):.0f}ms {shown}")


if __name__ == "__main__":
    main()
