"""Starts a real oytel-server on a fresh SQLite file for the Python SDK tests.

The binary comes from OYTEL_SERVER_BIN (default: target/debug/oytel-server, built by
`cargo test`). Partners and keys are created with the server's own admin commands.
"""

import json
import os
import pathlib
import subprocess
import tempfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
BIN = os.environ.get("OYTEL_SERVER_BIN", str(ROOT / "target" / "debug" / "oytel-server"))


def admin(db_url, *args):
    out = subprocess.run(
        [BIN, *args],
        env={**os.environ, "OYTEL_DATABASE_URL": db_url},
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


class Server:
    def __init__(self, base_url, db_url, process):
        self.base_url = base_url
        self.db_url = db_url
        self.process = process

    def admin(self, *args):
        return admin(self.db_url, *args)


@pytest.fixture(scope="session")
def server():
    tmp = tempfile.mkdtemp(prefix="oytel-py-")
    db_url = f"sqlite:{tmp}/oytel.db"
    process = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--mode", "production"],
        env={**os.environ, "OYTEL_DATABASE_URL": db_url, "OYTEL_LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()
    address = {}

    def read_logs():
        for line in process.stderr:
            try:
                log = json.loads(line)
            except ValueError:
                continue
            if log.get("fields", {}).get("message") == "Oytel API ready":
                address["listen"] = log["fields"]["listen"]
                ready.set()

    threading.Thread(target=read_logs, daemon=True).start()
    if not ready.wait(30):
        process.kill()
        raise RuntimeError("oytel-server did not become ready")
    yield Server(f"http://{address['listen']}", db_url, process)
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def partner(server):
    partner_id = server.admin("partner", "create", "--name", "Python SDK Partner")
    server.admin("partner", "credit", partner_id, "--amount", "200")
    # The suite sends requests faster than the default burst limit of 10 per second.
    server.admin("partner", "limits", partner_id, "--burst-per-second", "10000")
    return {
        "id": partner_id,
        "sandbox": server.admin("key", "create", "--partner", partner_id, "--env", "sandbox"),
        "live": server.admin("key", "create", "--partner", partner_id, "--env", "live"),
    }
