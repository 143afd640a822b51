"""``python -m llmgine_nb COMMAND``: the same as the ``llmgine-nb`` console script."""

import sys

from .cli import main

sys.exit(main())
