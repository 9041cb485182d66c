//! Reading rows one at a time from a streamed query, and the split numbers
//! in them.

use std::pin::Pin;

use futures_core::Stream;
use sqlx::any::AnyRow;

use crate::StoreError;
use crate::codec::join;
use crate::error::Doing as _;
use crate::store::get;

/// The rows of a streamed query.
pub(crate) type RowStream<'a> =
    Pin<Box<dyn Stream<Item = Result<AnyRow, sqlx::Error>> + Send + 'a>>;

/// The next row of `rows`, or `None` at the end.
pub(crate) async fn next_row(
    rows: &mut RowStream<'_>,
    action: &'static str,
) -> Result<Option<AnyRow>, StoreError> {
    std::future::poll_fn(|cx| rows.as_mut().poll_next(cx))
        .await
        .transpose()
        .doing(action)
}

/// The number of the `hi` and `lo` columns at `index` and `index + 1`
/// (single values or sums of halves).
pub(crate) fn wide(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<u128, StoreError> {
    let hi: i64 = get(row, table, key, column, index)?;
    let lo: i64 = get(row, table, key, column, index + 1)?;
    join(hi, lo).map_err(|()| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason: format!("negative half ({hi}, {lo})"),
    })
}

/// As [`wide`], for a value that must fit in `u64`.
pub(crate) fn narrow(
    row: &AnyRow,
    table: &'static str,
    key: &str,
    column: &'static str,
    index: usize,
) -> Result<u64, StoreError> {
    let value = wide(row, table, key, column, index)?;
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        table,
        key: key.to_owned(),
        column,
        reason: format!("{value} does not fit in 64 bits"),
    })
}
