//! Reading the previous full reports for the trend: one `ListObjectsV2` page
//! under the report prefix, then at most [`TREND_NIGHTS`] bounded reads, a
//! few at a time. Nothing here fails the report: what cannot be read is left
//! out of the trend, and the page says so.

use futures::stream::{self, StreamExt};

use super::publish::KEY_PREFIX;
use super::trend::{
    assemble, list_start_after, night_of, pick_previous, Listed, Pick, Trend, TrendPoint,
    MAX_PREVIOUS_BYTES, TREND_NIGHTS,
};
use crate::error_text;

/// Reads at once.
const CONCURRENT_READS: usize = 8;

async fn read_one(s3: &aws_sdk_s3::Client, bucket: &str, pick: &Pick) -> Result<String, String> {
    if pick.size.is_some_and(|size| size > MAX_PREVIOUS_BYTES) {
        return Err(format!("larger than {MAX_PREVIOUS_BYTES} bytes, not read"));
    }
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(&pick.key)
        .send()
        .await
        .map_err(|e| error_text(&e))?;
    let body = object.body.collect().await.map_err(|e| error_text(&e))?;
    String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8 text".to_string())
}

/// The trend ending with `tonight` (made at `now`).
pub async fn read_trend(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    now: jiff::Timestamp,
    tonight: TrendPoint,
) -> Trend {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{KEY_PREFIX}/"))
        .start_after(list_start_after(now))
        .send()
        .await;
    let listed = match listed {
        Ok(page) => page
            .contents()
            .iter()
            .filter_map(|o| {
                o.key().map(|key| Listed {
                    key: key.to_string(),
                    size: o.size(),
                })
            })
            .collect::<Vec<_>>(),
        Err(error) => {
            let error = error_text(&error);
            tracing::warn!(action = "read-trend", result = "failed", bucket, error = %error, "previous reports could not be listed");
            return assemble(tonight, Vec::new(), Some(error));
        }
    };
    let picks = pick_previous(&listed, &night_of(now), TREND_NIGHTS);
    let reads: Vec<(Pick, Result<String, String>)> = stream::iter(picks)
        .map(|pick| async move {
            let read = read_one(s3, bucket, &pick).await;
            (pick, read)
        })
        .buffered(CONCURRENT_READS)
        .collect()
        .await;
    let trend = assemble(tonight, reads, None);
    for skipped in &trend.skipped {
        tracing::warn!(action = "read-trend", result = "skipped", key = %skipped.key, reason = %skipped.reason, "previous report left out of the trend");
    }
    trend
}
