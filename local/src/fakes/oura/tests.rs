//! The fake Oura's own tests.
