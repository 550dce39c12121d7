"""UI fixtures: a task runner that is drained after each test, and screenshots under artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def runner(qtbot):
    """A task runner drained after the test; an unexpected error that no caller handled fails the test (the app
    would have shown its crash dialog)."""
    from spoke_client.ui.tasks import TaskRunner

    r = TaskRunner()
    unexpected: list[str] = []
    r.unexpected.connect(unexpected.append)
    yield r
    assert r.wait(30_000), "a background task was still running at the end of the test"
    qtbot.wait(10)  # deliver the last queued signals before the widgets go
    assert not unexpected, "a background job failed unexpectedly and nothing handled it:\n" + "\n".join(unexpected)


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(widget, name: str) -> Path:
        from PySide6.QtWidgets import QApplication

        for _ in range(3):  # pending layout requests and repaints first
            QApplication.processEvents()
        path = SCREENSHOTS / f"{name}.png"
        assert widget.grab().save(str(path)), f"could not save {path}"
        return path

    return save
