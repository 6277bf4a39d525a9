"""The pipeline's own code: the transaction contract, the producer API, the indexer, window arithmetic."""
