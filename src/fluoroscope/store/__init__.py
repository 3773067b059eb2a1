"""The ClickHouse-engine store: schema and migrations, writer, reader.

One schema and one SQL dialect; two transports (embedded chDB, or a ClickHouse server
through clickhouse-connect). See :class:`fluoroscope.store.store.Store` for the contract.
"""
