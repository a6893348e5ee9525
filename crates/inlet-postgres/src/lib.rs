//! PostgreSQL destination for inlet.
