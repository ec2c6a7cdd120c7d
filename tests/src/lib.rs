//! End-to-end test support for codriver.
