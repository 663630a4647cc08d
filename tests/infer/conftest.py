"""Fixtures for the inference tests: one engine on the embedded model, served over HTTP on a free port."""

from __future__ import annotations

import pytest

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smol_engine(smollm2_dir):
    from ftlab.engine.infer.factory import build_engine
    from ftlab.engine.infer.source import resolve_source

    engine = build_engine(resolve_source(MODEL, log=lambda *_: None), "hf", device="cpu", max_batch=16)
    yield engine
    engine.shutdown()


def _serve(engine, api_key=None):
    from ftlab.engine.infer.server import create_app, serve_in_thread

    server, thread, port = serve_in_thread(create_app(engine, api_key=api_key))
    return server, thread, f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def api_url(smol_engine):
    server, thread, url = _serve(smol_engine)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def keyed_url(smol_engine):
    server, thread, url = _serve(smol_engine, api_key="sekret")
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(api_url):
    from openai import OpenAI

    return OpenAI(base_url=api_url, api_key="unused", max_retries=0, timeout=120)
