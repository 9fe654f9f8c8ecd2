//! Every item of a list, page after page, as a stream that owns what it needs: no pinning,
//! no borrow of the client, nothing to add to your dependencies.
//!
//! ```no_run
//! # async fn run(client: oytel_client::OytelClient) -> oytel_client::Result<()> {
//! use oytel_client::stream::TryStreamExt as _;
//! use oytel_client::types::{EsimStatus, ListEsimsQuery};
//!
//! let mut active = client.esims().list_all(ListEsimsQuery::new().status(EsimStatus::Active));
//! while let Some(esim) = active.try_next().await? {
//!     println!("{}", esim.esim_id);
//! }
//! let orders = client.orders().list_all(Default::default()).collect_all().await?;
//! # Ok(()) }
//! ```
//!
//! A page that fails ends the stream with its error (after the client's retries); the items
//! before it have been yielded.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{self, Stream, StreamExt as _, TryStreamExt as _};
use oytel_types::Page;

use crate::client::OytelClient;
use crate::error::Result;
use crate::request::Request;

/// A query that can ask for the page after a cursor.
pub(crate) trait Cursor: Clone + Send + 'static {
    fn at(self, cursor: String) -> Self;
}

macro_rules! cursor {
    ($($query:ty),*) => {$(
        impl Cursor for $query {
            fn at(mut self, cursor: String) -> Self {
                self.cursor = Some(cursor);
                self
            }
        }
    )*};
}

cursor!(
    oytel_types::ListEsimsQuery,
    oytel_types::ListOrdersQuery,
    oytel_types::ListTransactionsQuery,
    oytel_types::PageQuery
);

/// Every item of a list, page after page (see the module's documentation). `Unpin`, `Send`
/// and `'static`: keep it in a struct, return it, move it to another task.
#[must_use = "a stream does nothing until it is polled"]
pub struct Paginated<T> {
    inner: Pin<Box<dyn Stream<Item = Result<T>> + Send>>,
}

impl<T> std::fmt::Debug for Paginated<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paginated").finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Paginated<T> {
    /// The pages `page` asks for, from `first` on, following each page's `next_cursor`.
    pub(crate) fn new<Q: Cursor>(
        client: &OytelClient,
        first: Q,
        page: impl Fn(&OytelClient, Q) -> Request<Page<T>> + Send + Sync + 'static,
    ) -> Paginated<T> {
        let client = client.clone();
        let page = std::sync::Arc::new(page);
        let pages = stream::try_unfold(Some(first), move |next| {
            let client = client.clone();
            let page = page.clone();
            async move {
                let Some(query) = next else {
                    return Ok(None);
                };
                let found = page(&client, query.clone()).await?;
                let following = found.next_cursor.map(|cursor| query.at(cursor));
                Ok(Some((
                    stream::iter(found.data.into_iter().map(Ok)),
                    following,
                )))
            }
        });
        Paginated {
            inner: Box::pin(pages.try_flatten()),
        }
    }

    /// A stream of these items (for tests: what a mocked list returns).
    pub fn from_items(items: impl IntoIterator<Item = Result<T>>) -> Paginated<T> {
        let items: Vec<Result<T>> = items.into_iter().collect();
        Paginated {
            inner: Box::pin(stream::iter(items)),
        }
    }

    /// Every item, or the first error.
    pub async fn collect_all(self) -> Result<Vec<T>> {
        self.try_collect().await
    }
}

impl<T> Stream for Paginated<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.inner.poll_next_unpin(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
