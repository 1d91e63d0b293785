"""``python -m xparse_convert.cli``: the same ``main`` as the console script (the package's
own module, so the signal state is one)."""

import sys

from xparse_convert.cli.commands import main

sys.exit(main())
