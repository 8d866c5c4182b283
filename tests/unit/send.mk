# Unit tests for send (appended by that module).
