"""HTML extraction: charset decoding (`charset`), trafilatura with our settings (`extract`), its faster XPath
pruning (`speedups`) and per-page CPU limits (`limits`)."""
