//! usage-correlator (under construction by its issue).
