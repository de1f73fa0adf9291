"""Command lines of ``python -m numerics``: argument parsing, checking and printing only.

Every subcommand calls the library (``numerics.training``, ``numerics.verify``,
``numerics.bench``) and turns its results into text and exit statuses; nothing here is imported
by the library. ``main``: dispatch and the exit statuses; ``train``, ``verify``, ``bench``: the
subcommands; ``status``: exit statuses and the error-to-status mapping; ``inputs``: checks of
flags and input files; ``outputs``: the result files, one run per ``--out`` directory.
"""
