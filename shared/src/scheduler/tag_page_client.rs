//! Hands `DescribeTags` pages to `tag_page` instead of the SDK's
//! deserializer: an HTTP client wrapped around the EC2 client's own, set on
//! one page's request (`config_override`). Signing, endpoints, retries and
//! error answers stay the SDK's: only a 200 answer that `tag_page` reads
//! whole is taken; the SDK then deserializes an empty page in its place.

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;

use super::tag_page::{parse_tag_page, TagPage};

/// What the SDK deserializes once a page was taken: a valid, empty page.
const TAKEN_PAGE: &str = "<DescribeTagsResponse><tagSet/></DescribeTagsResponse>";

/// Where one request's page lands: set by the last attempt that was
/// answered 200 and read whole.
#[derive(Clone, Debug, Default)]
pub struct TagPageSlot(Arc<Mutex<Option<TagPage>>>);

impl TagPageSlot {
    /// The page, if `tag_page` read it (else the SDK's output has it).
    pub fn take(&self) -> Option<TagPage> {
        self.0.lock().ok()?.take()
    }

    fn put(&self, page: TagPage) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(page);
        }
    }
}

/// `inner`, with the pages of 200 answers read into `slot`.
#[derive(Debug)]
pub struct TagPageClient {
    inner: SharedHttpClient,
    slot: TagPageSlot,
}

impl TagPageClient {
    pub fn new(inner: SharedHttpClient, slot: TagPageSlot) -> Self {
        Self { inner, slot }
    }
}

impl HttpClient for TagPageClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TagPageConnector {
            inner: self.inner.http_connector(settings, components),
            slot: self.slot.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct TagPageConnector {
    inner: SharedHttpConnector,
    slot: TagPageSlot,
}

impl HttpConnector for TagPageConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let answer = self.inner.call(request);
        let slot = self.slot.clone();
        HttpConnectorFuture::new(async move {
            let mut response: HttpResponse = answer.await?;
            if response.status().as_u16() != 200 {
                return Ok(response);
            }
            let bytes = read_body(response.take_body()).await?;
            *response.body_mut() = match parse_tag_page(&bytes) {
                Some(page) => {
                    slot.put(page);
                    response
                        .headers_mut()
                        .insert("content-length", TAKEN_PAGE.len().to_string());
                    SdkBody::from(TAKEN_PAGE)
                }
                None => SdkBody::from(bytes),
            };
            Ok(response)
        })
    }
}

/// How long the body may send nothing before the attempt fails: the SDK's
/// own stalled-stream grace period. The SDK guards the bodies it reads; this
/// one is read here, before its guard, so it gets the same.
const STALL_LIMIT: std::time::Duration =
    aws_smithy_runtime_api::client::stalled_stream_protection::DEFAULT_GRACE_PERIOD;

/// The whole body. A body cut short is an I/O error and a stalled one a
/// timeout, both retried by the SDK as such.
async fn read_body(body: SdkBody) -> Result<Vec<u8>, ConnectorError> {
    let mut stream = ByteStream::new(body);
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(STALL_LIMIT, stream.next()).await {
            Err(stalled) => return Err(ConnectorError::timeout(stalled.into())),
            Ok(None) => return Ok(bytes),
            Ok(Some(Err(cut))) => return Err(ConnectorError::io(cut.into())),
            Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
        }
    }
}
