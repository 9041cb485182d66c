//! Folding time-stamped flow estimates into per-bucket byte sums, the shape
//! of a Traffic Sentinel flow history (bucket, ipsource, ipdestination,
//! sourcezone, destinationzone, bytes).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

use time::OffsetDateTime;

use crate::{Error, FlowEstimate, ZoneMap, ZoneName};

/// One row of aggregated traffic: the bytes sent from `source` to
/// `destination` within the bucket starting at `bucket_start`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AggregatedFlow {
    /// Start of the bucket, UTC, a multiple of the granularity since the Unix
    /// epoch.
    pub bucket_start: OffsetDateTime,
    /// Source address.
    pub source: IpAddr,
    /// Destination address.
    pub destination: IpAddr,
    /// Zone of the source address.
    pub source_zone: ZoneName,
    /// Zone of the destination address.
    pub destination_zone: ZoneName,
    /// Σ frame length × sampling rate, in bytes.
    pub bytes: u64,
}

/// Per-(bucket, source, destination) byte sums of flow estimates; the zones
/// of each row follow from its addresses through a [`ZoneMap`].
///
/// A bucket is `granularity` seconds long and starts at a multiple of the
/// granularity since the Unix epoch (UTC). Rows come out ordered by bucket
/// start, then source, then destination (IPv4 before IPv6, each in numeric
/// order).
///
/// # Example
///
/// ```
/// use std::num::NonZeroU32;
///
/// use sflow::{FlowAggregator, FlowEstimate, ZoneMap};
/// use time::macros::datetime;
///
/// let zones = ZoneMap::parse("10.0.0.0/8,GUEST")?;
/// let mut aggregator = FlowAggregator::new(NonZeroU32::new(300).unwrap(), zones);
/// let flow = FlowEstimate {
///     source: "10.0.0.1".parse()?,
///     destination: "192.0.2.9".parse()?,
///     frame_length: 1000,
///     sampling_rate: 10,
/// };
/// aggregator.add(datetime!(2024-05-01 10:02:30 UTC), &flow)?;
/// aggregator.add(datetime!(2024-05-01 10:04:59 UTC), &flow)?;
/// aggregator.add(datetime!(2024-05-01 10:05:00 UTC), &flow)?;
/// let rows: Vec<_> = aggregator.iter().collect();
/// assert_eq!(rows.len(), 2);
/// assert_eq!(rows[0].bucket_start, datetime!(2024-05-01 10:00 UTC));
/// assert_eq!(rows[0].bytes, 20_000);
/// assert_eq!(rows[0].source_zone.as_str(), "GUEST");
/// assert_eq!(rows[0].destination_zone.as_str(), "EXTERNAL");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct FlowAggregator {
    granularity: NonZeroU32,
    zones: ZoneMap,
    buckets: BTreeMap<(i64, IpAddr, IpAddr), u64>,
}

impl FlowAggregator {
    /// An empty aggregation into buckets of `granularity` seconds, zoned by
    /// `zones`.
    pub fn new(granularity: NonZeroU32, zones: ZoneMap) -> FlowAggregator {
        FlowAggregator {
            granularity,
            zones,
            buckets: BTreeMap::new(),
        }
    }

    /// The bucket length, in seconds.
    pub fn granularity(&self) -> NonZeroU32 {
        self.granularity
    }

    /// The zone map rows are zoned by.
    pub fn zones(&self) -> &ZoneMap {
        &self.zones
    }

    /// The start of the bucket holding `at` (UTC).
    pub fn bucket_start(&self, at: OffsetDateTime) -> OffsetDateTime {
        from_unix(self.bucket_of(at))
    }

    fn bucket_of(&self, at: OffsetDateTime) -> i64 {
        let granularity = i64::from(self.granularity.get());
        at.unix_timestamp().div_euclid(granularity) * granularity
    }

    /// Adds `flow`'s bytes to its row of the bucket holding `at`.
    ///
    /// # Errors
    ///
    /// [`Error::ByteSumOverflow`] when the row's sum would pass `u64::MAX`;
    /// the row keeps its sum.
    pub fn add(&mut self, at: OffsetDateTime, flow: &FlowEstimate) -> Result<(), Error> {
        let bucket = self.bucket_of(at);
        let sum = self
            .buckets
            .entry((bucket, flow.source, flow.destination))
            .or_insert(0);
        match sum.checked_add(flow.bytes()) {
            Some(total) => {
                *sum = total;
                Ok(())
            }
            None => Err(Error::ByteSumOverflow {
                bucket_start: from_unix(bucket),
                source_ip: flow.source,
                destination_ip: flow.destination,
            }),
        }
    }

    /// Adds every flow of `flows` at `at` (e.g. a datagram's, stamped with
    /// its arrival or capture time).
    ///
    /// # Errors
    ///
    /// The first [`Error::ByteSumOverflow`]; every flow that fits is added
    /// all the same.
    pub fn add_all<'f>(
        &mut self,
        at: OffsetDateTime,
        flows: impl IntoIterator<Item = &'f FlowEstimate>,
    ) -> Result<(), Error> {
        let mut first = Ok(());
        for flow in flows {
            if let Err(error) = self.add(at, flow)
                && first.is_ok()
            {
                first = Err(error);
            }
        }
        first
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The rows, by bucket start, source, destination.
    pub fn iter(&self) -> impl Iterator<Item = AggregatedFlow> + '_ {
        self.buckets
            .iter()
            .map(|(&(bucket, source, destination), &bytes)| {
                self.row(bucket, source, destination, bytes)
            })
    }

    /// Removes and returns the rows of every bucket that starts before
    /// `end`'s bucket (the closed buckets, when `end` is now), in the order
    /// of [`FlowAggregator::iter`].
    pub fn take_before(&mut self, end: OffsetDateTime) -> Vec<AggregatedFlow> {
        let first_kept = (
            self.bucket_of(end),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        );
        let kept = self.buckets.split_off(&first_kept);
        let closed = std::mem::replace(&mut self.buckets, kept);
        closed
            .into_iter()
            .map(|((bucket, source, destination), bytes)| {
                self.row(bucket, source, destination, bytes)
            })
            .collect()
    }

    fn row(&self, bucket: i64, source: IpAddr, destination: IpAddr, bytes: u64) -> AggregatedFlow {
        AggregatedFlow {
            bucket_start: from_unix(bucket),
            source,
            destination,
            source_zone: self.zones.zone_of(source).clone(),
            destination_zone: self.zones.zone_of(destination).clone(),
            bytes,
        }
    }
}

/// The bucket start `seconds` since the epoch; buckets are floored from valid
/// timestamps, so they are valid too (the floor of the earliest supported
/// second is at most one granularity earlier, and is clamped to it).
fn from_unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(if seconds < 0 {
        time::PrimitiveDateTime::MIN.assume_utc()
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    })
}
