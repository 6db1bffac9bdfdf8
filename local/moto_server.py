"""moto in server mode on 127.0.0.1 and a free port, printed as `PORT <n>` on the first line.

Serialized by default (one request at a time): moto's backends are plain Python objects
without locks, so concurrent requests can interleave a condition check and its write. See
docs/LOCAL_AWS.md. `--threaded` serves concurrently (used to show that race). Exits when
stdin closes, so it never outlives the process that started it.
"""
import os
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    threaded = "--threaded" in sys.argv[1:]
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    print(f"PORT {server.server_port}", flush=True)

    def exit_with_parent() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
