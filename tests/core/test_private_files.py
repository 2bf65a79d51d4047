"""Development files under var/ are the user's alone: var/ 0700, every file in it 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from app.billing.local_gateway import LocalGateway
from app.core.config import Environment, MailerKind, Settings
from app.core.mail import FileMailer
from app.core.migrate import upgrade
from app.core.private_files import write_private
from app.seed import _demo_password


@pytest.fixture(autouse=True)
def common_umask() -> Iterator[None]:
    # The usual umask, under which a plain open or mkdir makes files others can read.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def development(var_dir: Path) -> Settings:
    return Settings.model_validate(
        {"env": Environment.development, "var_dir": var_dir, "mailer": MailerKind.file}
    )


def test_development_start_makes_var_private_with_secret_and_database(tmp_path: Path) -> None:
    var = tmp_path / "fresh" / "var"
    settings = development(var).check()
    assert mode(tmp_path / "fresh") == 0o700
    assert mode(var) == 0o700
    assert mode(var / "jwt_secret") == 0o600
    # The database file exists, private, before SQLite writes a byte; its journal files copy it.
    assert mode(var / "broadsheet.db") == 0o600
    upgrade(settings.resolved_database_url)
    written = sorted(var.glob("broadsheet.db*"))
    assert written and var / "broadsheet.db" in written
    assert {p.name: mode(p) for p in written} == {p.name: 0o600 for p in written}


def test_demo_admin_password_file_is_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    password = _demo_password(development(var))
    assert mode(var) == 0o700
    assert mode(var / "demo-admin-password") == 0o600
    assert _demo_password(development(var)) == password


async def test_file_mailer_writes_private_messages(tmp_path: Path) -> None:
    var = tmp_path / "var"
    message = EmailMessage()
    message["To"] = "reader@example.org"
    message["Subject"] = "Your sign-in link"
    message.set_content("https://www.example.com/sign-in?token=live")
    await FileMailer(development(var)).send(message)
    (written,) = (var / "outbox").glob("*.eml")
    assert (mode(var), mode(var / "outbox"), mode(written)) == (0o700, 0o700, 0o600)
    assert b"token=live" in written.read_bytes()


async def test_local_gateway_state_is_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    gateway = LocalGateway(development(var))
    await gateway.ensure_customer(user_id=1, email="reader@example.org")
    assert mode(var) == 0o700
    assert mode(var / "local-gateway.json") == 0o600
    assert "reader@example.org" in (var / "local-gateway.json").read_text()


def test_rewriting_an_older_readable_file_narrows_it_first(tmp_path: Path) -> None:
    older = tmp_path / "state.json"
    older.write_text("{}")
    assert mode(older) == 0o644
    write_private(older, b'{"new": 1}')
    assert mode(older) == 0o600
    assert older.read_bytes() == b'{"new": 1}'
