"""Imported first by the jobs/*.py scripts. Run as `spark-submit jobs/X.py`, Python puts jobs/ at the front of
sys.path, where jobs/tokenize.py shadows the standard library's `tokenize` (imported by numpy, via inspect):
take that directory off the path. Importing the project as `corpus.jobs.*` is unaffected."""

import os
import sys

_JOBS = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _JOBS]
