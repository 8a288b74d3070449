"""Reading inputs and writing outputs: input listing (`inputs`), remote files with retries (`remote`), output
folders on any filesystem (`storage`), Parquet shards written from a Python task (`shards`) and streaming
WARC/ARC reading (`warc`)."""
