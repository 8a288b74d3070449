"""`spark-submit jobs/tokens.py --config CONF.yaml [key=value ...]`: what `corpus tokenize` runs (stages/tokens.py)."""

import sys

from corpus.jobs.run import submit_main

if __name__ == "__main__":
    sys.exit(submit_main("tokenize"))
