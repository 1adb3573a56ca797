//! wayline-runner (being written).
