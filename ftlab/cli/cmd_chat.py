"""Chat with a model (base + optional adapter) in the terminal; one-shot with --message.

    ftctl chat MODEL|JOB [--adapter A] [--system TEXT] [--max-tokens N]
    ftctl chat MODEL|JOB --message "Who are you?"      # prints only the answer (greedy: same every time)

JOB: a serve job of ftd (`ftctl serve MODEL --submit`) is chatted with through ftd, its answer
streamed back as events; a training job stands for its trained output (loaded here).

Interactive: the answer streams as it is generated; the conversation is kept as history.
Commands: /reset (forget the history), /system TEXT (set the system prompt and reset),
/exit (or Ctrl-D). Ctrl-C stops the answer being written.
"""

from __future__ import annotations

import json
import queue
import sys

from .infer_args import add_model_arguments, model_source


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--message", "-m", metavar="TEXT", help="ask once, print only the answer, exit")
    parser.add_argument("--system", metavar="TEXT", help="system prompt (default: the chat template's own)")
    parser.add_argument("--max-tokens", type=int, default=256, help="longest answer in tokens (default 256)")
    parser.add_argument("--temperature", type=float,
                        help="sampling temperature; default 0 (greedy) with --message, 0.7 interactively")
    parser.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling when temperature > 0")
    parser.add_argument("--seed", type=int, help="seed for sampling")
    parser.add_argument("--json", action="store_true",
                        help="with --message: print {model, answer, finish_reason, usage} as JSON")


def _ask(engine, messages: list[dict], params, show) -> dict:
    """Run one answer through the engine, calling show(text) per streamed piece."""
    from ftlab.engine.infer.chatfmt import render_chat

    text = render_chat(engine.tokenizer, messages)
    prompt_ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    events: queue.Queue = queue.Queue()
    request_id = engine.submit(prompt_ids, params, events.put)
    answer = ""
    try:
        while True:
            event = events.get()
            if event.error:
                from ftlab.errors import UserError

                raise UserError(f"generation failed: {event.error}")
            answer += event.text
            if event.text:
                show(event.text)
            if event.finish_reason:
                return {"answer": answer, "finish_reason": event.finish_reason,
                        "usage": {"prompt_tokens": len(prompt_ids), "completion_tokens": event.completion_tokens}}
    except KeyboardInterrupt:
        engine.abort(request_id)
        return {"answer": answer, "finish_reason": "interrupted", "usage": {}}


def run(args) -> int:
    from ftlab.engine.infer.params import EngineError
    from ftlab.errors import UserError

    from .infer_args import job_info

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    one_shot = args.message is not None
    temperature = args.temperature if args.temperature is not None else (0.0 if one_shot else 0.7)
    job = job_info(args.model)
    if job is not None and job.get("stage") == "serve":
        return _chat_loop(args, _DaemonChat(int(args.model), args, temperature), one_shot)
    from ftlab.engine.infer.factory import build_engine
    from ftlab.engine.infer.params import SamplingParams

    source = model_source(args, log=log)
    if not one_shot:
        log(f"loading {source.describe()} ...")
    engine = build_engine(source, "hf", device=args.device, dtype=args.dtype, max_batch=1, log=lambda *_: None)
    params = SamplingParams(max_tokens=args.max_tokens, temperature=temperature, top_p=args.top_p, seed=args.seed)
    try:
        return _chat_loop(args, lambda messages, show: _ask(engine, messages, params, show), one_shot,
                          engine.model_id)
    except EngineError as err:
        raise UserError(str(err)) from None
    finally:
        engine.shutdown()


class _DaemonChat:
    """Answers from an ftd serve job, streamed back as protocol events."""

    def __init__(self, job_id: int, args, temperature: float):
        self.job_id = job_id
        self.params = {"max_tokens": args.max_tokens, "temperature": temperature, "top_p": args.top_p}
        if args.seed is not None:
            self.params["seed"] = args.seed

    def __call__(self, messages: list[dict], show) -> dict:
        from ftlab.daemon import client, serve

        answer = ""
        with client.connect() as ftd:
            pieces = serve.chat(ftd, self.job_id, messages, **self.params)
            try:
                for piece in pieces:
                    answer += piece
                    show(piece)
            except KeyboardInterrupt:
                pieces.close()
                return {"answer": answer, "finish_reason": "interrupted", "usage": {}}
        return {"answer": answer, "finish_reason": "stop", "usage": {}}


def _chat_loop(args, ask, one_shot: bool, model_id: str | None = None) -> int:
    system = args.system
    model_id = model_id or f"job {args.model}"
    if one_shot:
        messages = ([{"role": "system", "content": system}] if system else []) + \
                   [{"role": "user", "content": args.message}]
        if args.json:
            result = ask(messages, lambda _t: None)
            print(json.dumps({"model": model_id, **result}, ensure_ascii=False))
        else:
            ask(messages, lambda t: print(t, end="", flush=True))
            print()
        return 0
    return _interactive(ask, model_id, system)


def _interactive(ask, model_id: str, system: str | None) -> int:
    print(f"chatting with {model_id} — /reset, /system TEXT, /exit", file=sys.stderr)
    history: list[dict] = []
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            history = []
            print("(history cleared)", file=sys.stderr)
            continue
        if line.startswith("/system"):
            system = line[len("/system"):].strip() or None
            history = []
            print(f"(system prompt {'set' if system else 'cleared'}; history cleared)", file=sys.stderr)
            continue
        if line.startswith("/"):
            print("commands: /reset, /system TEXT, /exit", file=sys.stderr)
            continue
        messages = ([{"role": "system", "content": system}] if system else []) + history + \
                   [{"role": "user", "content": line}]
        print("bot> ", end="", flush=True)
        result = ask(messages, lambda t: print(t, end="", flush=True))
        print()
        if result["finish_reason"] == "interrupted":
            print("(stopped)", file=sys.stderr)
            continue
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": result["answer"]}]
