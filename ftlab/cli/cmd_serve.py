"""Serve a model (base + optional adapter) over an OpenAI-compatible HTTP API.

    ftctl serve MODEL|JOB [--adapter A] [--host 127.0.0.1] [--port 8000] [--backend hf|vllm] [--api-key K]

Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (streaming over SSE,
n, stop, seed, tools). Point any OpenAI client at http://HOST:PORT/v1. Binds 127.0.0.1 unless
--host says otherwise; --api-key (or $FTLAB_API_KEY) makes every /v1 request need
`Authorization: Bearer KEY`. Concurrent requests are batched together (continuous batching).
--port 0 picks a free port; --ready-file F writes {"url", "port", "model"} there once listening.

    ftctl serve MODEL [--adapter A] --submit [--gpus N]    # as an ftd job that holds a device

With --submit the model is served by ftd as a long-running job (it prints the job id): chat with it
by `ftctl chat JOB` or from ftui; `ftctl cancel JOB` stops it and frees the device.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from .infer_args import add_model_arguments, model_source


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="hf",
                        help="hf: transformers with continuous batching; vllm: needs the ftlab[vllm] extra")
    parser.add_argument("--api-key", default=os.environ.get("FTLAB_API_KEY"),
                        help="require 'Authorization: Bearer KEY' (default: $FTLAB_API_KEY, else no key)")
    parser.add_argument("--served-model-name", help="the model id clients use (default: from MODEL)")
    parser.add_argument("--max-batch", type=int, default=16, help="sequences decoded together at most")
    parser.add_argument("--max-len", type=int, help="context per sequence, prompt + answer (default: the model's)")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="on CUDA, run decode steps eagerly")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decode step (CUDA)")
    parser.add_argument("--ready-file", help="write {url, port, model} as JSON to this file once listening")
    parser.add_argument("--submit", action="store_true", help="run as an ftd serve job; prints the job id")
    parser.add_argument("--gpus", type=int, help="with --submit: GPUs to hold (default: ftd's default)")
    parser.add_argument("--name", help="with --submit: the job's name")
    parser.add_argument("--json", action="store_true",
                        help="print the listening address (with --submit: {id}) as one JSON line")


def submit(args) -> int:
    """Queue the serve job in ftd (paths made absolute: the job runs in its own folder)."""
    from pathlib import Path

    from ftlab.daemon import client
    from ftlab.daemon import protocol as P

    def absolute(value):
        return str(Path(value).expanduser().resolve()) if value and Path(value).expanduser().exists() else value

    spec = {"model": absolute(args.model), "adapter": absolute(args.adapter), "backend": args.backend,
            "max_batch": args.max_batch, "max_len": args.max_len, "dtype": args.dtype}
    body = {"serve": spec, "gpus": args.gpus, "name": args.name}
    with client.connect() as ftd:
        reply = ftd.request(P.SUBMIT, {k: v for k, v in body.items() if v is not None})
    if args.json:
        print(json.dumps({"id": reply["id"]}))
    else:
        print(f"serve job {reply['id']} queued: `ftctl chat {reply['id']}` to talk to it, "
              f"`ftctl cancel {reply['id']}` to stop it")
    return 0


def run(args) -> int:
    if args.submit:
        return submit(args)
    from ftlab.engine.infer.factory import build_engine
    from ftlab.engine.infer.server import create_app, make_server

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    source = model_source(args, log=log)
    log(f"loading {source.describe()} ({args.backend} backend)")
    engine = build_engine(source, args.backend, device=args.device, dtype=args.dtype, max_batch=args.max_batch,
                          max_len=args.max_len, cuda_graphs=False if args.no_cuda_graphs else None,
                          compile=args.compile, log=log)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        log(f"warning: listening on {args.host} without --api-key: anyone who reaches this port can use the model")
    server = make_server(create_app(engine, api_key=args.api_key), args.host, args.port)

    def stop(_signum, _frame):
        server.should_exit = True

    # uvicorn catches SIGINT/SIGTERM while it runs and re-raises them afterwards: these make that a no-op
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    import threading

    def announce():
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if not server.started:
            return
        port = server.servers[0].sockets[0].getsockname()[1]
        host = f"[{args.host}]" if ":" in args.host else args.host
        info = {"url": f"http://{host}:{port}/v1", "port": port, "model": engine.model_id,
                **engine.info()}
        if args.ready_file:
            tmp = f"{args.ready_file}.tmp"
            with open(tmp, "w") as fh:
                json.dump(info, fh)
            os.replace(tmp, args.ready_file)
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            log(f"serving {engine.model_id} at {info['url']}  (Ctrl-C stops)")

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    finally:
        engine.shutdown()
    return 0
