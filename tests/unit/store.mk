# tests for store: see tests/unit/local.mk
