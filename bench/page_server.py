"""A fast local OData server for the big-pull benchmark: pre-encoded pages over keep-alive HTTP.

Serves ``GET /api/orders?records=N[&page=K]``: page K (from 0) of a collection of N records,
``PAGE_SIZE`` records a page, each record 12 flat fields, with ``@odata.nextLink`` to the next
page until the last. Bodies are encoded once at start-up, so a request costs the server one
``recv`` and one ``sendmsg``: the client's work is what the benchmark measures, not the server's.
It runs in its own process (``python -m bench.page_server --port P``), prints ``ready`` when it
listens and serves until it is killed; it binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
from urllib.parse import parse_qs, urlsplit

PAGE_SIZE = 1_000
MAX_RECORDS = 1_000_000
CONTENT_TYPE = (
    "application/json; odata.metadata=minimal; odata.streaming=true; "
    "IEEE754Compatible=false; charset=utf-8"
)
COUNTRIES = ("NL", "BE", "DE", "FR", "GB", "ES", "IT", "PL")
CITIES = ("Amsterdam", "Brussels", "Berlin", "Paris", "London", "Madrid", "Rome", "Warsaw")
STATUSES = ("open", "released", "shipped", "invoiced")
RECV_BYTES = 65_536


def record(i: int) -> dict[str, object]:
    """Record number ``i``: 12 flat fields, the mix of an ERP sales line."""
    return {
        "id": i,
        "number": f"SO-{i:08d}",
        "customer": f"Customer {i % 9973}",
        "email": f"buyer{i % 9973}@example.com",
        "amount": round((i % 100_000) * 1.37, 2),
        "quantity": i % 50 + 1,
        "active": i % 3 != 0,
        "created": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
        "country": COUNTRIES[i % len(COUNTRIES)],
        "city": CITIES[(i // 7) % len(CITIES)],
        "status": STATUSES[i % len(STATUSES)],
        "discount": (i % 20) / 100,
    }


def encode_page(page: int) -> bytes:
    """The ``value`` array of page ``page`` (without the braces around the body)."""
    rows = [record(i) for i in range(page * PAGE_SIZE, (page + 1) * PAGE_SIZE)]
    return json.dumps(rows, separators=(",", ":")).encode("utf-8")


class PageServer:
    """Pre-encoded pages on a keep-alive HTTP/1.1 socket server (one thread a connection)."""

    def __init__(self, port: int, max_records: int = MAX_RECORDS) -> None:
        self.port = port
        self.pages = [encode_page(n) for n in range(-(-max_records // PAGE_SIZE))]
        self.context = b'{"@odata.context":"http://127.0.0.1/api/$metadata#orders","value":'

    def body(self, target: str) -> tuple[int, list[bytes]]:
        """Status and body parts for a request target."""
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        if parts.path != "/api/orders":
            return 404, [b'{"error":{"code":"NotFound","message":"no such path"}}']
        total = int(query.get("records", ["0"])[0])
        page = int(query.get("page", ["0"])[0])
        pages = -(-total // PAGE_SIZE)
        if total > len(self.pages) * PAGE_SIZE or page >= max(pages, 1):
            return 400, [b'{"error":{"code":"BadRequest","message":"out of range"}}']
        if total == 0:
            return 200, [self.context, b"[]}"]
        tail = b"}"
        if page + 1 < pages:
            link = f"http://127.0.0.1:{self.port}/api/orders?records={total}&page={page + 1}"
            tail = b',"@odata.nextLink":' + json.dumps(link).encode() + b"}"
        return 200, [self.context, self.pages[page], tail]

    def handle(self, conn: socket.socket) -> None:
        """Serve one connection until the client closes it."""
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(RECV_BYTES)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
                status, parts = self.body(target)
                length = sum(len(p) for p in parts)
                header = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {length}\r\n"
                    "Connection: keep-alive\r\n\r\n"
                ).encode("latin-1")
                conn.sendall(header + b"".join(parts))

    def serve(self) -> None:
        """Listen on 127.0.0.1 and serve forever."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        print("ready", flush=True)
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()


def main(argv: list[str]) -> int:
    """``python -m bench.page_server --port P [--records N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--records", type=int, default=MAX_RECORDS)
    args = parser.parse_args(argv)
    PageServer(args.port, args.records).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
