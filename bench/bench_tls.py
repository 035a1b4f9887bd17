"""CPU cost of a new HTTPS connection made by the Fetcher, on 127.0.0.1.

Every source on its own host costs a cold refresh one TLS connection. This
serves a feed over HTTPS with a certificate from a throwaway authority
(trustme, in the ``test`` extra), names a CA bundle of certifi's
certificates plus that authority in ``REQUESTS_CA_BUNDLE``, and times, in
the calling thread's CPU, fetches that each open a new connection.

    python bench/bench_tls.py [--fetches 50]
"""

from __future__ import annotations

import argparse
import http.server
import os
import resource
import ssl
import tempfile
import threading
from pathlib import Path

import certifi
import trustme


class _Feed(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b"<rss version='2.0'><channel><title>t</title></channel></rss>"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetches", type=int, default=50)
    args = parser.parse_args()

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Feed)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes() + authority.cert_pem.bytes())
        os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
        from feeds.config import FetchConfig
        from feeds.sources.fetch import Fetcher, FetchRequest

        url = f"https://127.0.0.1:{server.server_address[1]}/feed.xml"
        Fetcher(FetchConfig()).fetch(FetchRequest("warm-up", url))
        started = thread_cpu()
        for n in range(args.fetches):
            fetcher = Fetcher(FetchConfig())  # a new Session: a new connection
            fetcher.fetch(FetchRequest(f"s{n}", url))
            fetcher.close()
        each = (thread_cpu() - started) / args.fetches * 1000
    server.shutdown()
    print(f"{args.fetches} fetches, each on a new HTTPS connection: {each:.1f} ms of CPU each")


if __name__ == "__main__":
    main()
