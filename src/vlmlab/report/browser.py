"""Headless Chromium: render a report page to a PNG screenshot or to its DOM.

Used by the demo (a `report.png` beside `report.html`) and by tests that check what a person would
see. Chromium is Debian's `chromium` package; when it is absent, `find_chromium()` returns None and
callers skip the screenshot, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from vlmlab.errors import VlmlabError

# Flags that keep a headless Chromium quiet on a machine without network or display.
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def find_chromium() -> Path | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    exe = find_chromium()
    if exe is None:
        raise VlmlabError("headless Chromium not found; install Debian's 'chromium' package (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="vlmlab-chromium-") as profile:
        cmd = [str(exe), *_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise VlmlabError(f"chromium did not finish within {timeout:.0f} s rendering {args[-1]}") from None


def screenshot(html_path: Path, png_path: Path, *, width: int = 1280, height: int = 2400, timeout: float = 60) -> Path:
    """Render `html_path` and save a full-width screenshot to `png_path`."""
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    result = _run([f"--screenshot={png_path}", f"--window-size={width},{height}", html_path.as_uri()], timeout)
    if not png_path.exists():
        raise VlmlabError(f"chromium made no screenshot of {html_path}: {result.stderr.decode(errors='replace')[-200:]}")
    return png_path


MAX_SCREENSHOT_HEIGHT = 32000


def full_page_screenshot(html_path: Path, png_path: Path, *, width: int = 1280, height: int = 2400,
                         timeout: float = 120) -> Path:
    """A screenshot of the whole page, however long: render, and while the page's content reaches
    the bottom edge render again twice as tall; then trim the blank space below the content.

    Headless Chromium only shoots the window, so a fixed height cut long reports at 2,400 px.
    """
    import numpy as np
    import PIL.Image

    while True:
        screenshot(html_path, png_path, width=width, height=height, timeout=timeout)
        with PIL.Image.open(png_path) as im:
            pixels = np.asarray(im.convert("RGB"))
        background = pixels[-1, 0]
        blank_rows = np.all(pixels == background, axis=(1, 2))
        if not blank_rows[-40:].all() and height < MAX_SCREENSHOT_HEIGHT:
            height = min(2 * height, MAX_SCREENSHOT_HEIGHT)
            continue
        content = np.nonzero(~blank_rows)[0]
        bottom = int(content[-1]) + 1 + 24 if content.size else pixels.shape[0]
        PIL.Image.fromarray(pixels[: min(bottom, pixels.shape[0])]).save(png_path)
        return Path(png_path)


def dump_dom(html_path: Path, *, timeout: float = 60) -> str:
    """The DOM after the page ran (scripts included, if any had been allowed to run)."""
    result = _run(["--dump-dom", Path(html_path).resolve().as_uri()], timeout)
    return result.stdout.decode("utf-8", errors="replace")
