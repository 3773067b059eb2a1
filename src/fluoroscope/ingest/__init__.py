"""Ingest: documents in, normalized rows out.

UDP datagrams and PutTraceSegments batches are validated, split into one row per
segment and subsegment, merged per trace (summaries, service-graph statistics with
inferred nodes) and written to the store in bounded batches.
"""
