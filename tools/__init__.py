"""Tools users run: the script scaffolder (``make new-script``)."""
