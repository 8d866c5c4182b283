# tests for mime: see tests/unit/local.mk
