//! smpp-connector service.
