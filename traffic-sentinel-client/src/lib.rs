//! traffic-sentinel-client (under construction by its issue).
