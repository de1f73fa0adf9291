"""Command lines of ``python -m numerics``: argument parsing and printing only.

Every subcommand calls the library (``numerics.training``, ``numerics.verify``,
``numerics.bench``) and turns its results into text and exit statuses; nothing here is imported
by the library.
"""
