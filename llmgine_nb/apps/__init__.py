"""Example applications built on llmgine-nb.

Each application lives in its own subpackage (``llmgine_nb.apps.tasks`` is the
task assistant) and is imported only when asked for, so ``import llmgine_nb``
stays fast.
"""
