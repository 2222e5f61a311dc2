"""Scripts: one module per batch job, run as ``python -m src.<name> ORG_ID ENV_TYPE``."""
