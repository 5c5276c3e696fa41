"""``python -m eipl_trt.demo`` (what ``make demo`` runs): see :mod:`eipl_trt.demo.run`."""

import sys

from eipl_trt.demo.run import main

sys.exit(main())
