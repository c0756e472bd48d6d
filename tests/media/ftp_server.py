"""A real FTP server for the media store's tests: Twisted's own FTP protocol, one
user whose home is the given directory (read and write), in a process of its own
(Twisted's reactor cannot share the test process).

``python -m tests.media.ftp_server ROOT PORT USER PASSWORD``; :func:`ftp_server`
starts it and yields once it listens.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.harness import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def ftp_server(root: Path, user: str, password: str) -> Iterator[int]:
    """Serve ``root`` over FTP on 127.0.0.1 to ``user``/``password``; yields the port."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.media.ftp_server", str(root), str(port), user, password],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, timeout=30, alive=lambda: proc.poll() is None, what="FTP server")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def serve(root: str, port: int, user: str, password: str) -> None:
    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
    from twisted.cred.portal import Portal
    from twisted.internet import reactor
    from twisted.protocols.ftp import BaseFTPRealm, FTPFactory
    from twisted.python.filepath import FilePath

    class HomeIsRoot(BaseFTPRealm):
        def getHomeDirectory(self, avatarId: object) -> FilePath:
            return FilePath(root)

    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(user, password)  # the FTP protocol hands both over as str
    factory = FTPFactory(Portal(HomeIsRoot(root), [checker]))
    reactor.listenTCP(port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
