"""`python -m trainer` and `torchrun --standalone --nproc_per_node=N -m trainer ...`."""

import sys

from .cli import main

sys.exit(main())
