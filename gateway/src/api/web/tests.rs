//! Tests of the web UI over the router (no browser): tests/tests/ui.rs drives a real one.
