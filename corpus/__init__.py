"""corpus: web-scale corpus processing (FineWeb / FinePDFs recipes) with Apache Spark as the executor.

The core (reading, extraction, language ID, filters, hashing, tokenization) is plain Python over documents and
Arrow batches; `corpus.jobs` wires it into Spark.
"""

__version__ = "0.1.0"
