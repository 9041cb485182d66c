//! Which zones a query counts.

/// Which zones a query counts, as in a TS filter
/// `destinationzone = A,B & destinationzone != C`.
///
/// A zone matches when it is in the include list (or the include list is
/// empty, meaning any zone) and it is not in the exclude list. By default,
/// both lists are empty: every zone matches, including the empty zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl ZoneFilter {
    /// A filter matching every zone.
    pub fn any() -> ZoneFilter {
        ZoneFilter::default()
    }

    /// Adds `zone` to the include list.
    pub fn include(mut self, zone: impl Into<String>) -> ZoneFilter {
        self.include.push(zone.into());
        self
    }

    /// Adds `zone` to the exclude list.
    pub fn exclude(mut self, zone: impl Into<String>) -> ZoneFilter {
        self.exclude.push(zone.into());
        self
    }

    /// The include list (empty means any zone).
    pub fn included(&self) -> &[String] {
        &self.include
    }

    /// The exclude list.
    pub fn excluded(&self) -> &[String] {
        &self.exclude
    }

    /// Whether flows of `zone` count under this filter.
    pub fn matches(&self, zone: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|z| z == zone))
            && !self.exclude.iter().any(|z| z == zone)
    }
}
