//! Bytes sent and received by one address: the value a traffic answer
//! carries per `(query, address)` pair.

use crate::Error;

/// Bytes sent and received by one address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ByteCounts {
    /// Bytes with the address as source (usage type 4).
    pub sent: u64,
    /// Bytes with the address as destination (usage type 5).
    pub received: u64,
}

impl ByteCounts {
    /// No bytes either way.
    pub const ZERO: ByteCounts = ByteCounts {
        sent: 0,
        received: 0,
    };

    /// Whether no byte moved either way.
    pub fn is_zero(&self) -> bool {
        self.sent == 0 && self.received == 0
    }

    /// The sum of two counts, field by field.
    ///
    /// # Errors
    ///
    /// Returns [`Error::Overflow`] when either field overflows `u64`; counts
    /// never wrap.
    ///
    /// # Example
    ///
    /// ```
    /// use usage_model::ByteCounts;
    ///
    /// let a = ByteCounts { sent: 1_000, received: 250 };
    /// let b = ByteCounts { sent: 24, received: 6 };
    /// assert_eq!(a.checked_add(b)?, ByteCounts { sent: 1_024, received: 256 });
    ///
    /// let full = ByteCounts { sent: u64::MAX, received: 0 };
    /// assert!(full.checked_add(ByteCounts { sent: 1, received: 0 }).is_err());
    /// # Ok::<(), usage_model::Error>(())
    /// ```
    pub fn checked_add(self, other: ByteCounts) -> Result<ByteCounts, Error> {
        let add = |left: u64, right: u64| {
            left.checked_add(right)
                .ok_or(Error::Overflow { left, right })
        };
        Ok(ByteCounts {
            sent: add(self.sent, other.sent)?,
            received: add(self.received, other.received)?,
        })
    }
}
