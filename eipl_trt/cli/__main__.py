"""``python -m eipl_trt.cli`` is ``eipl-trt``."""

import sys

from eipl_trt.cli import main

sys.exit(main())
