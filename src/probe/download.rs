//! The download prober: a GET of a URL whose body is read up to
//! `max_bytes`, timed and rated — throttling shows as a low rate, the
//! TSPU's "16–20 KB freeze" as a stall.
//!
//! Resolve, connect and TLS are the HTTP prober's steps (each failure at its
//! own stage). The transfer starts when the request is sent: from then on,
//! `stall_after` without a byte (head or body) fails the check at stage
//! `read` with `generic_timeout_error` and marks it stalled. A transfer
//! still receiving when the check's time runs out is not a failure: it
//! ended, and its rate is what was measured. Redirects are not followed; a
//! status other than 2xx fails at stage `http`.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use http_body_util::BodyExt;
use rustls::ClientConfig;

use super::http::{get_request, http_err, open, start};
use super::{Facts, Outcome, Progress, TargetResolver, Transfer, kernel};
use crate::config::TransferCheck;
use crate::reason::{Reason, Stage};

/// Downloads at most `max_bytes` of the check's URL.
pub async fn probe(
    check: &TransferCheck,
    tls: Option<Arc<ClientConfig>>,
    resolver: TargetResolver<'_>,
    progress: &Progress,
) -> Outcome {
    let (stream, conn) = match open(&check.url, tls.as_ref(), &resolver, progress).await {
        Ok(s) => s,
        Err((stage, reason)) => return Outcome::failed(stage, reason),
    };
    progress.enter(Stage::Http);
    let (mut sender, _conn) = match start(stream).await {
        Ok(s) => s,
        Err((stage, reason)) => return Outcome::failed(stage, reason),
    };
    let request = match get_request(&check.url) {
        Ok(r) => r,
        Err((stage, reason)) => return Outcome::failed(stage, reason),
    };
    progress.enter(Stage::Read);
    let sent = progress.transfer_started();
    let ended = |failure: Option<(Stage, Reason)>, stalled: bool, status: Option<u16>| {
        // The connection is still open: its socket is the one counted.
        if let Some(c) = kernel::tcp_counters(conn.fd.as_raw_fd()) {
            progress.segments(c.segs_in);
        }
        let transfer = progress.transfer(stalled).map(|t| Transfer { status, ..t });
        if let Some((stage, reason)) = failure {
            tracing::debug!(
                stage = stage.as_str(),
                reason = reason.as_str(),
                status,
                bytes = transfer.map(|t| t.bytes),
                seconds = transfer.map(|t| t.duration.as_secs_f64()),
                "download failed"
            );
        }
        Outcome {
            failure,
            duration: transfer.map(|t| t.duration),
            facts: transfer.map_or(Facts::None, Facts::Download),
            control: None,
            ech: None,
        }
    };
    let stall = (Stage::Read, Reason::GenericTimeout);
    let response = match tokio::time::timeout(check.stall_after, sender.send_request(request)).await
    {
        Err(_) => return ended(Some(stall), true, None),
        Ok(Err(e)) => return ended(Some((Stage::Read, http_err(e).1)), false, None),
        Ok(Ok(r)) => r,
    };
    let status = Some(response.status().as_u16());
    progress.first_byte(sent.elapsed());
    if !response.status().is_success() {
        return ended(
            Some((Stage::Http, Reason::HttpUnexpectedStatus)),
            false,
            status,
        );
    }
    let mut body = response.into_body();
    let mut bytes = 0;
    while bytes < check.bytes {
        match tokio::time::timeout(check.stall_after, body.frame()).await {
            Err(_) => return ended(Some(stall), true, status),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => {
                // Count no more than max_bytes: a frame may overshoot it.
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                bytes = progress.received(n.min(check.bytes - bytes));
                // Kept as it goes: a download cut off by its deadline has
                // them too.
                if let Some(c) = kernel::tcp_counters(conn.fd.as_raw_fd()) {
                    progress.segments(c.segs_in);
                }
            }
            Ok(Some(Err(e))) => return ended(Some((Stage::Read, http_err(e).1)), false, status),
        }
    }
    ended(None, false, status)
}
