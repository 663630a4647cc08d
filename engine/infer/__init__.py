"""Inference: serve a model (base + optional adapter) for chat and an OpenAI-compatible HTTP API.

    source = resolve_source("smollm2-135m-instruct")          # or a run dir, an adapter, a job's output
    engine = build_engine(source, backend="hf")               # batching engine in its own thread
    app = create_app(engine)                                  # FastAPI: /v1/models, /v1/chat/completions, ...

Modules, one job each:
- `params`    sampling parameters and output events (torch-free)
- `source`    MODEL | run dir | adapter | job → folders to load (torch-free)
- `loader`    load model + tokenizer (+ peft adapter, merged) onto a device
- `kvslots`   the slot KV cache shared by all running requests (a transformers `Cache`)
- `textout`   incremental detokenization and stop strings
- `hf_engine` the Hugging Face backend: continuous batching scheduler, streaming, CUDA graphs
- `vllm_engine` the vLLM backend (extra `ftlab[vllm]`)
- `chatfmt`   prompts from OpenAI messages (chat template, tool definitions) and tool-call parsing
- `openai_api` request bodies of the OpenAI API (pydantic)
- `server`    the FastAPI app and its runner
"""
