"""A python-socketio client of tandem for the Go tests (see pyclient.go).

Usage: python3 pyclient.py URL TRANSPORTS
  URL         the server's base URL (http://127.0.0.1:port)
  TRANSPORTS  "websocket" or "polling,websocket" (polling, then the upgrade)
The session cookie comes from $TANDEM_COOKIE, as the Go test's cookie jar
holds it after real HTTP requests.

It writes one JSON object a line on stdout: {"event": "connected",
"transport": ..., "log": [the Engine.IO client's log lines so far]}, then every "current count" as {"event": "count", "n": N}
and every other server event as {"event": NAME, "args": [...]}. It reads
one command a line on stdin: "incr" emits incr with an ack and writes
{"event": "ack", "args": [...]}; "quit" (or the end of stdin) disconnects
and exits 0. Any failure is written as {"event": "error", ...} and exits 1.
The Engine.IO client's log (polling, upgrade) goes to stderr.
"""

import json
import logging
import os
import sys
import threading

import socketio

lock = threading.Lock()


class Recorder(logging.Handler):
    """Keeps the Engine.IO client's log lines for the "connected" line."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def out(**obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def main():
    url, transports = sys.argv[1], sys.argv[2].split(",")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    recorder = Recorder()
    logging.getLogger("engineio").addHandler(recorder)
    sio = socketio.Client(reconnection=False, logger=False,
                          engineio_logger=logging.getLogger("engineio"))

    @sio.on("current count")
    def count(n):
        out(event="count", n=n)

    @sio.on("*")
    def other(name, *args):
        out(event=name, args=list(args))

    @sio.event
    def disconnect():
        out(event="disconnect")

    try:
        sio.connect(url, headers={"Cookie": os.environ["TANDEM_COOKIE"]},
                    transports=transports, socketio_path="socket.io",
                    wait_timeout=10)
    except Exception as e:  # a clear line for the Go test, not a traceback
        out(event="error", error="connect: %r" % e)
        return 1
    out(event="connected", transport=sio.transport(), log=recorder.lines)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "incr":
            try:
                ack = sio.call("incr", timeout=10)
            except Exception as e:
                out(event="error", error="incr: %r" % e)
                return 1
            out(event="ack", args=ack if isinstance(ack, list) else [ack])
        elif cmd == "quit":
            break
        else:
            out(event="error", error="unknown command %r" % cmd)
            return 1
    sio.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
