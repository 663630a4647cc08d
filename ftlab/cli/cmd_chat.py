"""Chat with a model (base + optional adapter) in the terminal; one-shot with --message.

    ftctl chat MODEL|JOB [--adapter A] [--system TEXT] [--max-tokens N]
    ftctl chat MODEL|JOB --message "Who are you?"      # prints only the answer (greedy: same every time)

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
    from ftlab.engine.infer.factory import build_engine
    from ftlab.engine.infer.params import EngineError, SamplingParams
    from ftlab.errors import UserError

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    source = model_source(args, log=log)
    one_shot = args.message is not None
    if not one_shot:
        log(f"loading {source.describe()} ...")
    engine = build_engine(source, "hf", device=args.device, dtype=args.dtype, max_batch=1, log=lambda *_: None)
    temperature = args.temperature if args.temperature is not None else (0.0 if one_shot else 0.7)
    params = SamplingParams(max_tokens=args.max_tokens, temperature=temperature, top_p=args.top_p, seed=args.seed)
    system = args.system
    try:
        if one_shot:
            messages = ([{"role": "system", "content": system}] if system else []) + \
                       [{"role": "user", "content": args.message}]
            if args.json:
                result = _ask(engine, messages, params, lambda _t: None)
                print(json.dumps({"model": engine.model_id, **result}, ensure_ascii=False))
            else:
                _ask(engine, messages, params, lambda t: print(t, end="", flush=True))
                print()
            return 0
        return _interactive(engine, params, system)
    except EngineError as err:
        raise UserError(str(err)) from None
    finally:
        engine.shutdown()


def _interactive(engine, params, system: str | None) -> int:
    print(f"chatting with {engine.model_id} — /reset, /system TEXT, /exit", file=sys.stderr)
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
        result = _ask(engine, messages, params, lambda t: print(t, end="", flush=True))
        print()
        if result["finish_reason"] == "interrupted":
            print("(stopped)", file=sys.stderr)
            continue
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": result["answer"]}]
