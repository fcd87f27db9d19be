//! Raw gRPC calls: arbitrary request bytes to any method path, through the
//! real tonic client and server, for fuzzing and malformed-input tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use prost::bytes::{Buf, BufMut};
use spares::cli::client::{AuthChannel, Target};
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Status};

/// A codec that sends and receives message bytes as they are.
#[derive(Debug, Clone, Default)]
pub struct RawCodec;

/// Encoder and decoder of [`RawCodec`].
#[derive(Debug, Clone, Default)]
pub struct Raw;

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

/// An anonymous connection for raw calls.
pub async fn channel(url: &str) -> AuthChannel {
    channel_as(url, None).await
}

/// A connection for raw calls presenting `key`.
pub async fn channel_as(url: &str, key: Option<&str>) -> AuthChannel {
    spares::cli::client::channel(Target::new(url, key.map(str::to_string)))
        .await
        .unwrap()
}

/// Longest a single call may take before the harness calls it a hang.
pub const HANG: Duration = Duration::from_secs(60);

/// Sends `body` to `path` (`/spares.v1.Service/Method`) and returns the
/// status code (Ok for a reply) and the message. Server-streaming methods
/// read the first item only.
pub async fn call(
    channel: &AuthChannel,
    path: &str,
    body: Vec<u8>,
    streaming: bool,
) -> (Code, String) {
    let mut grpc = tonic::client::Grpc::new(channel.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    grpc.ready().await.unwrap();
    let name = path.to_string();
    let path = PathAndQuery::try_from(path.to_string()).unwrap();
    let request = tonic::Request::new(body);
    let result = tokio::time::timeout(HANG, async {
        if streaming {
            let response = grpc.server_streaming(request, path, RawCodec).await?;
            let mut stream = response.into_inner();
            let first = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
            match first {
                Ok(Err(status)) => Err(status),
                _ => Ok(()),
            }
        } else {
            grpc.unary(request, path, RawCodec).await.map(|_| ())
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a call to {name} hung for {HANG:?}"));
    match result {
        Ok(()) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_string()),
    }
}
