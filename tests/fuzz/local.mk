# libFuzzer targets (clang, --enable-fuzz); see tests/fuzz/README.
