//! wayline-config (being written).
