"""``hydranet serve``: a local web page to drop an image or a video and see segmentation and depth.

Why FastAPI + uvicorn and one plain HTML/JS page (``pip install "hydranet[app]"``), not Gradio:

- a small dependency set (FastAPI, uvicorn, python-multipart: pure Python, a few MB), where
  Gradio pulls in a large tree of packages and a bundled front-end;
- it works offline: the page is one file with its script and styles inline, served by the
  app itself; nothing comes from a CDN and the page may talk to nothing but this server
  (its Content-Security-Policy says so);
- it runs in the same process as :class:`~hydranet.Predictor`, through the same pipeline,
  renderer and writers as ``hydranet predict``, so page and command give the same pixels;
- it is testable as a person uses it: ``tests/test_serve.py`` drives the page in headless
  Chromium, and the JSON API with plain HTTP.

``service`` holds the logic (uploads, jobs, results, pixel readings) and needs no web
package; ``app`` is the FastAPI application around it; ``page.html`` is the page.
"""

from __future__ import annotations

import importlib

# The packages of the `app` extra, by import name.
APP_PACKAGES: tuple[str, ...] = ("fastapi", "uvicorn", "python_multipart")
INSTALL_HINT = 'pip install "hydranet[app]"'


def missing_packages() -> list[str]:
    """The packages of the ``app`` extra that do not import (empty when all are there)."""
    missing = []
    for name in APP_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


__all__ = ["APP_PACKAGES", "INSTALL_HINT", "missing_packages"]
