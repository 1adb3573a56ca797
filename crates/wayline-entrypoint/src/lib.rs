//! wayline-entrypoint (being written).
