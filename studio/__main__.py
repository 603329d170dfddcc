"""``python -m studio`` is ``anomaly-studio``."""
import sys

from studio.cli import main

sys.exit(main())
