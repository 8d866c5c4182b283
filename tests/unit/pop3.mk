# Unit tests for pop3 (appended by that module).
