# Unit tests for discover (appended by that module).
