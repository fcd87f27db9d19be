//! Small helpers shared by the gRPC handlers: paging, blocking calls, streams.

use crate::config::Limits;
use crate::domain::DomainError;
use crate::pb;
use crate::service::Spares;
use crate::store::StoreError;
use std::sync::Arc;
use tonic::Status;

/// Runs a blocking application call (it may flush to disk) off the async runtime.
pub async fn blocking<T, F>(spares: &Arc<Spares>, f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce(&Spares) -> Result<T, StoreError> + Send + 'static,
{
    let spares = spares.clone();
    tokio::task::spawn_blocking(move || f(&spares))
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?
        .map_err(Status::from)
}

/// The page size to use for a request, within the named limits.
pub fn page_size(page: Option<&pb::PageRequest>, limits: &Limits) -> Result<usize, DomainError> {
    let requested = page.map_or(0, |p| p.page_size as usize);
    match requested {
        0 => Ok(limits.default_page_size),
        n if n > limits.max_page_size => Err(DomainError::OutOfRange {
            field: "page.page_size".into(),
            reason: format!("at most {}", limits.max_page_size),
        }),
        n => Ok(n),
    }
}

/// Takes one page from items sorted by key: those after the page token, at most
/// the page size. The next token is the last key returned, or empty at the end.
pub fn paginate<T>(
    items: impl Iterator<Item = (String, T)>,
    page: Option<&pb::PageRequest>,
    limits: &Limits,
) -> Result<(Vec<T>, String), DomainError> {
    let size = page_size(page, limits)?;
    let token = page.map(|p| p.page_token.as_str()).unwrap_or("");
    let mut out = Vec::with_capacity(size.min(1024));
    let mut last_key = String::new();
    let mut more = false;
    for (key, item) in items.filter(|(key, _)| token.is_empty() || key.as_str() > token) {
        if out.len() == size {
            more = true;
            break;
        }
        last_key = key;
        out.push(item);
    }
    Ok((out, if more { last_key } else { String::new() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once() {
        let limits = Limits::default();
        let items: Vec<(String, u32)> = (0..25).map(|i| (format!("k{i:03}"), i)).collect();
        let mut token = String::new();
        let mut seen = Vec::new();
        loop {
            let page = pb::PageRequest {
                page_size: 10,
                page_token: token.clone(),
            };
            let (got, next) = paginate(items.clone().into_iter(), Some(&page), &limits).unwrap();
            seen.extend(got);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn oversize_page_is_out_of_range() {
        let page = pb::PageRequest {
            page_size: 5000,
            page_token: String::new(),
        };
        let err = page_size(Some(&page), &Limits::default()).unwrap_err();
        assert!(matches!(err, DomainError::OutOfRange { .. }));
    }
}
