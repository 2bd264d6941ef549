"""ganops stage logic: one module per stage (ingest, validate, train, evaluate, register)."""
