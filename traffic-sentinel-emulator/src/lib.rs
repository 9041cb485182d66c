//! traffic-sentinel-emulator (under construction by its issue).
