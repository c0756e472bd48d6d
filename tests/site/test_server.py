"""SiteServer lifecycle: fixed ports, busy ports, stop twice, restart on the same ports."""

from __future__ import annotations

import socket

import pytest

from sandbox.harness import free_port
from sandbox.site import SiteServer
from tests.site.helpers import fetch


def test_fixed_ports_stop_twice_and_restart() -> None:
    port, cdn_port = free_port(), free_port()
    site = SiteServer(seed=2, notes=20, port=port, cdn_port=cdn_port)
    with site:
        assert (
            site.url == f"http://127.0.0.1:{port}"
            and site.cdn_url == f"http://127.0.0.1:{cdn_port}"
        )
        assert fetch(site.url + "/explore").status == 200
    site.stop()
    with pytest.raises(OSError):
        fetch(site.url + "/explore")
    with SiteServer(seed=2, notes=20, port=port, cdn_port=cdn_port) as again:
        assert fetch(again.url + "/explore").status == 200


def test_busy_port_raises_and_releases_the_other() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        free = free_port()
        with pytest.raises(OSError):
            SiteServer(notes=20, port=free, cdn_port=busy.getsockname()[1]).start()
    with SiteServer(notes=20, port=free) as site:  # the first socket was released
        assert fetch(site.url + "/").status == 302


def test_unknown_knob_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown knob"):
        SiteServer(notes=20, captcha=3)
