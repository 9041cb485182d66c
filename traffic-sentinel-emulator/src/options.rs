//! How the emulator serves, besides its history.

use std::fmt;

use time::UtcOffset;
use usage_model::ServerTimeZone;

use crate::sflow_options::SflowIngest;

/// How the emulator serves, besides its history.
///
/// A small by-value builder:
///
/// ```
/// use time::macros::offset;
/// use traffic_sentinel_emulator::EmulatorOptions;
///
/// let options = EmulatorOptions::new()
///     .server_utc_offset(offset!(+05:30))
///     .max_body_bytes(1 << 20);
/// assert_eq!(options.get_max_body_bytes(), 1 << 20);
/// ```
#[derive(Clone)]
pub struct EmulatorOptions {
    pub(crate) server_time_zone: ServerTimeZone,
    pub(crate) max_body_bytes: usize,
    pub(crate) basic_auth: Option<(String, String)>,
    pub(crate) sflow: Option<SflowIngest>,
}

impl Default for EmulatorOptions {
    fn default() -> EmulatorOptions {
        EmulatorOptions {
            server_time_zone: ServerTimeZone::UTC,
            max_body_bytes: 64 << 20,
            basic_auth: None,
            sflow: None,
        }
    }
}

impl fmt::Debug for EmulatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorOptions")
            .field(
                "server_time_zone",
                &format_args!("{}", self.server_time_zone),
            )
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "basic_auth",
                &self
                    .basic_auth
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .field("sflow", &self.sflow)
            .finish()
    }
}

impl EmulatorOptions {
    /// The default options.
    pub fn new() -> EmulatorOptions {
        EmulatorOptions::default()
    }

    /// The time zone in which the server reads the `"yyyyMMdd HH:mm:ss"`
    /// interval strings of scripts (TS's local time), a repeated local hour
    /// as its earlier instant ([`ServerTimeZone::from_local`]). Never this
    /// machine's time zone. By default, UTC.
    pub fn server_time_zone(mut self, zone: ServerTimeZone) -> EmulatorOptions {
        self.server_time_zone = zone;
        self
    }

    /// A server time zone at the fixed UTC `offset`: the same as
    /// `server_time_zone(ServerTimeZone::fixed(offset))`. By default, UTC.
    pub fn server_utc_offset(self, offset: UtcOffset) -> EmulatorOptions {
        self.server_time_zone(ServerTimeZone::fixed(offset))
    }

    /// The largest request body accepted; larger requests get
    /// `413 Payload Too Large` without being read in full. By default, 64 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> EmulatorOptions {
        self.max_body_bytes = bytes;
        self
    }

    /// Requires HTTP basic credentials on queries; requests without them (or
    /// with others) get `401 Unauthorized`. By default, no credentials are
    /// required and any `Authorization` header is ignored.
    pub fn basic_auth(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> EmulatorOptions {
        self.basic_auth = Some((user.into(), password.into()));
        self
    }

    /// Takes in sFlow datagrams over UDP as [`SflowIngest`] says, into
    /// buckets of the history's granularity, served as they fill (see
    /// [`Emulator`](crate::Emulator#sflow-ingest)). By default, the history
    /// is served as it was given and no socket is opened.
    pub fn sflow(mut self, ingest: SflowIngest) -> EmulatorOptions {
        self.sflow = Some(ingest);
        self
    }

    /// The configured sFlow ingest, if any.
    pub fn get_sflow(&self) -> Option<&SflowIngest> {
        self.sflow.as_ref()
    }

    /// The configured server time zone.
    pub fn get_server_time_zone(&self) -> &ServerTimeZone {
        &self.server_time_zone
    }

    /// The configured body size limit.
    pub fn get_max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_redacts_the_password() {
        let options = EmulatorOptions::new().basic_auth("user", "s3cret");
        let debug = format!("{options:?}");
        assert!(
            debug.contains("user") && !debug.contains("s3cret"),
            "{debug}"
        );
    }
}
