"""`spark-submit jobs/refetch.py --config CONF.yaml [key=value ...]`: what `corpus refetch` runs (stages/refetch.py)."""

import sys

from corpus.jobs.run import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("refetch"))
