"""Plain float64 references and cases for ``tests/test_metric_references.py``, one module per
module of ``rpx_tasks.metrics`` (the same name); ``table`` holds the row types they share."""
