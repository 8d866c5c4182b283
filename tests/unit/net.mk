# tests for net: see tests/unit/local.mk
