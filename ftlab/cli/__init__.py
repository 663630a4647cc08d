"""ftctl: the scriptable command line. One module per command group; `main.COMMANDS` is the table."""
