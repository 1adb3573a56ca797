//! wayline-plugins (being written).
