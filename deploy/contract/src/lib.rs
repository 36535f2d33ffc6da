//! Contract checks between deploy/ and the metric catalog.
