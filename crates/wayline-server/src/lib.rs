//! wayline-server (being written).
