//! The fake Withings' own tests, over HTTP.
