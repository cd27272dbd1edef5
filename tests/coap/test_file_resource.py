"""A file resource without sockets: a device file or a sysfs-like file is served, a directory,
FIFO or socket is a config error; a short write is 5.00, never 2.04 with data lost; an
unreadable file is logged once per change, not on every poll."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import aiocoap
import pytest

from ace.cli.rs_resources import resource_table
from ace.coap import resources
from ace.coap.devices import ResourceSpec
from ace.coap.resources import FileResource
from ace.errors import ConfigError


def file_entry(name: str, **more: Any) -> tuple[ResourceSpec, ...] | None:
    return resource_table([{"path": "/f", "file": name, **more}], "rs.toml")


def test_character_devices_and_regular_files_are_file_resources(tmp_path: Path) -> None:
    (tmp_path / "temp").write_text("21\n")
    for name in ("/dev/null", "/dev/zero", str(tmp_path / "temp")):
        specs = file_entry(name)
        assert specs is not None and specs[0].file == name


def test_directories_fifos_and_sockets_are_config_errors(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        for name, kind in ((str(tmp_path), "directory"), (str(tmp_path / "fifo"), "FIFO"),
                           (str(tmp_path / "sock"), "socket")):
            with pytest.raises(ConfigError, match=f"is a {kind}; allowed: a regular file"):
                file_entry(name)
    finally:
        sock.close()


def test_a_character_device_is_read_within_the_size_budget(tmp_path: Path) -> None:
    assert FileResource(ResourceSpec(path="/z", file="/dev/zero", max_bytes=64)).read() == bytes(64)
    assert FileResource(ResourceSpec(path="/n", file="/dev/null")).read() == b""
    (tmp_path / "big").write_bytes(b"x" * 65)
    assert FileResource(ResourceSpec(path="/b", file=str(tmp_path / "big"), max_bytes=64)).read() is None


def put(resource: FileResource, payload: bytes) -> Any:
    import asyncio

    return asyncio.run(resource.put(aiocoap.Message(code=aiocoap.PUT, payload=payload), None))  # type: ignore[arg-type]


def test_a_short_write_is_finished_or_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "led"
    target.write_text("0")
    resource = FileResource(ResourceSpec(path="/led", methods=("PUT",), file=str(target)))
    real_write = os.write
    monkeypatch.setattr(resources.os, "write", lambda fd, data: real_write(fd, bytes(data[:2])))  # 2 bytes a call
    assert put(resource, b"hello").code == aiocoap.CHANGED
    assert target.read_bytes() == b"hello"
    monkeypatch.setattr(resources.os, "write", lambda fd, data: real_write(fd, bytes(data[:2])) if len(data) > 3 else 0)
    with caplog.at_level(logging.WARNING):
        assert put(resource, b"hello").code == aiocoap.INTERNAL_SERVER_ERROR  # not 2.04 with "llo" lost
    assert "wrote 2 of 5 bytes" in caplog.text


def test_an_unreadable_file_is_logged_once_per_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "temp"
    target.write_text("1")
    resource = FileResource(ResourceSpec(path="/temp", file=str(target)))
    with caplog.at_level(logging.INFO, logger="ace.coap.resources"):
        target.unlink()
        for _ in range(5):  # five polls of a file gone
            assert resource.read() is None
        target.write_text("2")
        for _ in range(3):
            assert resource.read() == b"2"
        target.unlink()
        assert resource.read() is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "cannot read" in lines[0] and "readable again" in lines[1] and "cannot read" in lines[2]
