"""Reading tokenized/ for training: fixed-length sequences packed across documents, streamed.

    from corpus.dataset import PackedSequences

    for sequence in PackedSequences("out/fineweb/tokenized", seq_len=2048, rank=0, world_size=8):
        ...  # numpy uint32 array of 2048 token ids

Documents are concatenated in shard order, each ending with its end-of-document token, and cut into windows
of `seq_len` tokens (a window may span documents; the EOS tokens mark where one ends). Shards are read one
Parquet row group at a time (about `tokenize.row_group_tokens` tokens), so memory stays small whatever the
shard size. With `world_size > 1`, rank r reads shards r, r + world_size, ... (give each rank whole shards).

The shards are plain Parquet, so other tools read them directly too:

    datasets.load_dataset("parquet", data_files="out/fineweb/tokenized/*.parquet")
    pyarrow.dataset.dataset("out/fineweb/tokenized")
    duckdb.sql("select sum(token_count) from 'out/fineweb/tokenized/*.parquet'").fetchall()
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

import numpy as np
import pyarrow.parquet as pq


def shard_paths(location: str | list[str]) -> list[str]:
    """A tokenized/ folder, a glob, or a list of files -> sorted shard files."""
    if isinstance(location, list):
        return sorted(location)
    if os.path.isdir(location):
        return sorted(glob.glob(os.path.join(location, "*.parquet")))
    return sorted(glob.glob(location))


class PackedSequences:
    def __init__(
        self,
        location: str | list[str],
        seq_len: int,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if seq_len <= 0:
            raise ValueError("seq_len must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size})")
        self.paths = shard_paths(location)[rank::world_size]
        if not self.paths:
            raise FileNotFoundError(f"no tokenized shards for rank {rank} of {world_size} in {location}")
        self.seq_len = seq_len
        self.drop_last = drop_last

    def row_groups(self) -> Iterator[np.ndarray]:
        """The token ids of each row group, flattened (documents back to back), one group at a time."""
        for path in self.paths:
            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                tokens = parquet.read_row_group(group, columns=["tokens"]).column("tokens")
                yield tokens.combine_chunks().values.to_numpy(zero_copy_only=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        carry = np.empty(0, dtype=np.uint32)
        for values in self.row_groups():
            buffer = np.concatenate([carry, values]) if carry.size else values
            whole = len(buffer) // self.seq_len * self.seq_len
            for start in range(0, whole, self.seq_len):
                yield buffer[start : start + self.seq_len]
            carry = buffer[whole:].copy()
        if carry.size and not self.drop_last:
            yield carry
