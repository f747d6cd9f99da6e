"""Kedro-free data handling: raw Amazon 2014 parsing, k-core filtering, leave-one-out splits."""
