//! Fitbit and Pixel through the Google Health API (being written).
