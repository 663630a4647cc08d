"""The OpenAI-compatible HTTP API over an engine (FastAPI + uvicorn).

    GET  /v1/models                 the one model this server holds
    POST /v1/chat/completions       messages, tools, n, stop, seed, temperature, top_p, stream (SSE)
    POST /v1/completions            prompt (a string or a list), same sampling fields
    GET  /health                    {"status": "ok", ...}; never needs the key

Errors come in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`: 400 for bad
parameters, 401 for a missing or wrong key (`--api-key`; clients send `Authorization: Bearer KEY`),
404 for an unknown model. With tools, each choice's text is held until it ends, then sent as
content or as `tool_calls` (a partial `<tool_call>` is never shown as text).

    app = create_app(engine, api_key=None)
    run_server(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .chatfmt import TOOL_CLOSE, forced_prefix, parse_tool_calls, render_chat
from .openai_api import APIError, ChatCompletionRequest, CompletionRequest
from .params import EngineError, Event, SamplingParams


class _Run:
    """One engine request seen from asyncio: events arrive through a queue."""

    def __init__(self, engine, prompt_ids: list[int], params: SamplingParams):
        self.engine = engine
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.params = params
        self.prompt_tokens = len(prompt_ids)
        try:
            self.request_id = engine.submit(prompt_ids, params, self._on_event)
        except EngineError as err:
            raise APIError(400, str(err), param="messages") from None

    def _on_event(self, event: Event) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def events(self):
        open_choices = self.params.n
        try:
            while open_choices:
                event = await self.queue.get()
                if event.error:
                    raise APIError(500, f"the engine failed: {event.error}", type="server_error")
                if event.finish_reason:
                    open_choices -= 1
                yield event
        finally:
            if open_choices:
                self.engine.abort(self.request_id)

    async def collect(self) -> list[dict]:
        results = [{"text": "", "finish_reason": None, "tokens": 0} for _ in range(self.params.n)]
        async for event in self.events():
            slot = results[event.index]
            slot["text"] += event.text
            slot["tokens"] = event.completion_tokens
            slot["finish_reason"] = event.finish_reason or slot["finish_reason"]
        return results


def _sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def create_app(engine, api_key: str | None = None) -> FastAPI:
    app = FastAPI(title="ftlab OpenAI-compatible API", docs_url=None, redoc_url=None)
    created = int(time.time())
    tokenizer = engine.tokenizer

    @app.exception_handler(APIError)
    async def _api_error(_request, err: APIError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _bad_body(_request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        message = first.get("msg", "invalid request")
        param = ".".join(loc) or None
        return JSONResponse(APIError(400, f"{param}: {message}" if param else message, param=param).body(),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request, err: StarletteHTTPException):
        return JSONResponse(APIError(err.status_code, str(err.detail)).body(), status_code=err.status_code)

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if api_key and request.url.path.startswith("/v1/"):
            header = request.headers.get("authorization", "")
            if not header:
                return JSONResponse(APIError(401, "You didn't provide an API key: send it as "
                                                  "'Authorization: Bearer KEY'.").body(), status_code=401)
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), api_key.encode()):
                return JSONResponse(APIError(401, "Incorrect API key provided.", code="invalid_api_key").body(),
                                    status_code=401)
        return await call_next(request)

    def model_card() -> dict:
        return {"id": engine.model_id, "object": "model", "created": created, "owned_by": "ftlab"}

    def check_model(name: str) -> None:
        if name != engine.model_id:
            raise APIError(404, f"The model `{name}` does not exist; this server holds `{engine.model_id}`.",
                           param="model", code="model_not_found")

    def params_of(body, max_tokens: int | None, default_max: int, stop: list[str], prefix: str = "") -> SamplingParams:
        if body.logprobs:
            raise APIError(400, "logprobs are not supported by this server", param="logprobs")
        return SamplingParams(max_tokens=max_tokens or default_max,
                              temperature=1.0 if body.temperature is None else body.temperature,
                              top_p=1.0 if body.top_p is None else body.top_p, n=body.n, stop=stop,
                              seed=body.seed, prefix=prefix)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": engine.model_id, **engine.info()}

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str):
        check_model(name)
        return model_card()

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest):
        check_model(body.model)
        messages = [m.model_dump(exclude_none=True) for m in body.messages]
        tools = body.tools if body.tools and body.tool_choice != "none" else None
        if body.tool_choice not in (None, "none", "auto") and not tools:
            raise APIError(400, "tool_choice needs tools", param="tool_choice")
        try:
            text = render_chat(tokenizer, messages, tools, body.tool_choice)
        except Exception as err:  # noqa: BLE001  a template that rejects these messages (e.g. roles out of order)
            raise APIError(400, f"the chat template rejected the messages: {err}", param="messages") from None
        prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        prefix = forced_prefix(body.tool_choice) if tools else ""
        stop = body.stop_list() + ([TOOL_CLOSE] if prefix else [])
        params = params_of(body, body.max_completion_tokens or body.max_tokens,
                           max(1, engine.max_len - len(prompt_ids)), stop, prefix)
        run = _Run(engine, prompt_ids, params)
        answer_id = f"chatcmpl-{uuid.uuid4().hex}"
        now = int(time.time())
        if body.stream:
            return StreamingResponse(_chat_stream(run, answer_id, now, bool(tools), body.include_usage()),
                                     media_type="text/event-stream")
        results = await run.collect()
        choices = []
        for index, result in enumerate(results):
            message: dict = {"role": "assistant", "content": result["text"]}
            finish = result["finish_reason"]
            if tools:
                parsed = parse_tool_calls(result["text"] + (TOOL_CLOSE if prefix else ""))
                if parsed.tool_calls:
                    message = {"role": "assistant", "content": parsed.content, "tool_calls": parsed.tool_calls}
                    finish = "tool_calls"
            choices.append({"index": index, "message": message, "finish_reason": finish, "logprobs": None})
        return {"id": answer_id, "object": "chat.completion", "created": now, "model": engine.model_id,
                "choices": choices, "usage": _usage(run.prompt_tokens, sum(r["tokens"] for r in results))}

    async def _chat_stream(run: _Run, answer_id: str, now: int, tools: bool, include_usage: bool):
        def chunk(choices, usage=None):
            data = {"id": answer_id, "object": "chat.completion.chunk", "created": now,
                    "model": engine.model_id, "choices": choices}
            if include_usage:
                data["usage"] = usage
            return _sse(data)

        held = [""] * run.params.n
        tokens = [0] * run.params.n
        for index in range(run.params.n):
            yield chunk([{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        try:
            async for event in run.events():
                tokens[event.index] = event.completion_tokens
                if tools:
                    held[event.index] += event.text
                elif event.text:
                    yield chunk([{"index": event.index, "delta": {"content": event.text}, "finish_reason": None}])
                if not event.finish_reason:
                    continue
                finish = event.finish_reason
                if tools:
                    suffix = TOOL_CLOSE if run.params.prefix else ""
                    parsed = parse_tool_calls(held[event.index] + suffix)
                    if parsed.tool_calls:
                        finish = "tool_calls"
                        calls = [dict(call, index=i) for i, call in enumerate(parsed.tool_calls)]
                        delta = {"content": parsed.content, "tool_calls": calls}
                    else:
                        delta = {"content": held[event.index]}
                    yield chunk([{"index": event.index, "delta": delta, "finish_reason": None}])
                yield chunk([{"index": event.index, "delta": {}, "finish_reason": finish}])
        except APIError as err:
            yield _sse(err.body())
            return
        if include_usage:
            yield chunk([], _usage(run.prompt_tokens, sum(tokens)))
        yield _sse("[DONE]")

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        check_model(body.model)
        prompts = [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)
        if not prompts or len(prompts) > 16:
            raise APIError(400, "prompt must be a string or a list of 1 to 16 strings", param="prompt")
        if body.suffix:
            raise APIError(400, "suffix is not supported by this server", param="suffix")
        runs = []
        for prompt in prompts:
            ids = tokenizer(prompt)["input_ids"]
            runs.append(_Run(engine, ids, params_of(body, body.max_tokens, 16, body.stop_list())))
        answer_id = f"cmpl-{uuid.uuid4().hex}"
        now = int(time.time())

        def choice(i: int, text: str, finish):
            return {"index": i, "text": text, "finish_reason": finish, "logprobs": None}

        if body.stream:
            async def stream():
                queue: asyncio.Queue = asyncio.Queue()

                async def pump(k: int, run: _Run):
                    try:
                        async for event in run.events():
                            await queue.put((k, event))
                    except APIError as err:
                        await queue.put((k, err))
                    await queue.put((k, None))

                tasks = [asyncio.create_task(pump(k, run)) for k, run in enumerate(runs)]
                usage_tokens: dict[tuple[int, int], int] = {}
                echoed: set[tuple[int, int]] = set()
                left = len(runs)
                try:
                    while left:
                        k, item = await queue.get()
                        if item is None:
                            left -= 1
                            continue
                        if isinstance(item, APIError):
                            yield _sse(item.body())
                            return
                        usage_tokens[(k, item.index)] = item.completion_tokens
                        text = item.text
                        if body.echo and (k, item.index) not in echoed:
                            echoed.add((k, item.index))
                            text = prompts[k] + text
                        data = {"id": answer_id, "object": "text_completion", "created": now,
                                "model": engine.model_id,
                                "choices": [choice(k * body.n + item.index, text, item.finish_reason)]}
                        yield _sse(data)
                    if body.include_usage():
                        total = sum(usage_tokens.values())
                        yield _sse({"id": answer_id, "object": "text_completion", "created": now,
                                    "model": engine.model_id, "choices": [],
                                    "usage": _usage(sum(r.prompt_tokens for r in runs), total)})
                    yield _sse("[DONE]")
                finally:
                    for task in tasks:
                        task.cancel()

            return StreamingResponse(stream(), media_type="text/event-stream")

        results = await asyncio.gather(*(run.collect() for run in runs))
        choices = []
        completion_tokens = 0
        for k, per_prompt in enumerate(results):
            for i, result in enumerate(per_prompt):
                text = (prompts[k] if body.echo else "") + result["text"]
                choices.append(choice(k * body.n + i, text, result["finish_reason"]))
                completion_tokens += result["tokens"]
        return {"id": answer_id, "object": "text_completion", "created": now, "model": engine.model_id,
                "choices": choices, "usage": _usage(sum(r.prompt_tokens for r in runs), completion_tokens)}

    return app


def make_server(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning"):
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False))


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0):
    """Start uvicorn in a background thread; returns (server, thread, port). Stop: server.should_exit = True."""
    server = make_server(app, host, port)
    thread = threading.Thread(target=server.run, name="ftlab-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, bound
