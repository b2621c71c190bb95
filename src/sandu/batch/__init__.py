"""Pre-credit in batch (预授信 / 白名单): whole regions scored, limited and priced at once.

`schema` documents and checks the enterprise columns, `kernel` turns a batch of rows into
decisions (pure), `run` streams a Parquet file through the kernel on the local engine
or on Spark (`spark`), writing the decisions, the rejected rows and the versions.
"""
