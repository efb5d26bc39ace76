"""`python -m gateway` is `storegw`."""

import sys

from gateway.cli import main

sys.exit(main())
