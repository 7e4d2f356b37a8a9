//! `faultline-logger`: a non-blocking `tracing` layer for Faultline services.
