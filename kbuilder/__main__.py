"""``python -m kbuilder``: the same as the ``kbuilder`` command."""

from kbuilder.cli import main

raise SystemExit(main())
