"""ftlab: fine-tune, serve and evaluate LLMs on a shared lab workstation.

The distribution has four parts: `ftlab.engine` (config, data, model, train, infer, eval — the
only part that imports torch), `ftlab.daemon` (ftd), `ftlab.tui` (ftui) and `ftlab.cli` (ftctl).
"""

__version__ = "0.1.0"
