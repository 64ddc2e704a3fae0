"""`python -m nexus_o.cli ...`: the same commands as `nexus-o ...` (torchrun launches training this way)."""

from nexus_o.cli import app

app()
