#!/usr/bin/env python3
"""Start the fleetops local AWS emulator (moto server mode + fleetops extension).

    python tests/emulator/server.py [--host 127.0.0.1] [--port 0]

Prints exactly one line, ``FLEETOPS_EMULATOR_READY http://<host>:<port>``, once it
accepts connections, then serves until SIGTERM/SIGINT or until stdin reaches EOF
(so a harness that dies never leaves it running; pass --ignore-stdin to keep it
running with a closed stdin, e.g. ``< /dev/null``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        default=os.environ.get("FLEETOPS_EMULATOR_IGNORE_STDIN") == "1",
        help="do not stop when stdin reaches EOF",
    )
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    # Dummy credentials/region for anything moto does on its own behalf.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # moto loads ~2,600 AMIs (each with a snapshot) into every EC2 backend it creates,
    # which makes every reset slow; the emulator ships moto's 44 base AMIs instead.
    # Set MOTO_AMIS_PATH yourself to use another list.
    os.environ.setdefault("MOTO_AMIS_PATH", os.path.join(HERE, "fleetops_emulator", "amis.json"))

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    import fleetops_emulator

    class Handler(MotoRequestHandler):
        def log_request(self, code: object = "-", size: object = "-") -> None:
            if args.verbose:
                super().log_request(code, size)

        def log(self, type: str, message: str, *a: object) -> None:  # noqa: A002
            if args.verbose or type == "error":
                sys.stderr.write(f"[emulator] {message % a}\n")

    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.ERROR)

    app = fleetops_emulator.build_app()
    server = make_server(args.host, args.port, app, threaded=True, request_handler=Handler)
    # Never wait for idle keep-alive connections on the way out.
    server.daemon_threads = True
    server.block_on_close = False
    port = server.server_port
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    def _watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except Exception:  # noqa: BLE001
            pass
        stop.set()

    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serve.start()
    host = args.host if ":" not in args.host else f"[{args.host}]"
    sys.stdout.write(f"FLEETOPS_EMULATOR_READY http://{host}:{port}\n")
    sys.stdout.flush()
    # Anything moto prints later must not pollute the single-line stdout contract.
    sys.stdout = sys.stderr
    if not args.ignore_stdin and sys.stdin is not None:
        threading.Thread(target=_watch_stdin, daemon=True).start()

    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
