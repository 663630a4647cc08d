"""ftlab.engine: everything that runs in a job process — config, data, model, train, infer, eval.

Only `ftlab.engine.config` may be imported by ftd, ftui and ftctl's light commands: it is
torch-free. Everything else imports torch and belongs in a job process.
"""
