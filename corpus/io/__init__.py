"""Reading inputs and writing outputs: input listing (`inputs`), remote files with retries (`remote`), output
folders on any filesystem (`storage`) and streaming WARC/ARC reading (`warc`)."""
