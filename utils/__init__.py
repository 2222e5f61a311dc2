"""TXO batch toolkit: the shared library behind every script in ``src/``."""
