"""Long-running generators (fuzzers) of bad input; run by hand, not collected by pytest."""
