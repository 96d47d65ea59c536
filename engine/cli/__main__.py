"""``python -m engine.cli``: the same as the ``upbit-engine`` command."""

from __future__ import annotations

import sys

from engine.cli.entry import main

__all__ = ()

sys.exit(main())
