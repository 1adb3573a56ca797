//! wayline-plugin (being written).
