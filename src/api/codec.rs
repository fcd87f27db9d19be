//! The gRPC codec of `spares.v1`: prost, with two things in front of decoding.
//! A request's wire bytes are first checked against the limits table
//! ([`super::limits`]), so an oversize or malformed field is refused with a
//! status naming it before anything is decoded; and a message that does not
//! decode is `INVALID_ARGUMENT` (bad input from the client), where tonic's
//! prost codec answers `INTERNAL`. `build.rs` points the generated services
//! and clients at [`SparesCodec`]. On the client side, responses are not in
//! the limits table and are only decoded.

use super::status::domain_status;
use prost::bytes::Buf;
use prost::{Message, Name};
use std::marker::PhantomData;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Encodes `T` and decodes `U` with prost, checking requests on the way in.
#[derive(Debug, Clone)]
pub struct SparesCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for SparesCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for SparesCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Name + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = SparesDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        SparesDecoder { _type: PhantomData }
    }
}

/// Checks and decodes one `U`.
#[derive(Debug, Clone)]
pub struct SparesDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Name + Default> Decoder for SparesDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let name = U::full_name();
        // tonic hands the whole message in one contiguous buffer; copy it in
        // the (never seen) case it is not.
        if buf.chunk().len() == buf.remaining() {
            super::limits::check_request(&name, buf.chunk()).map_err(|e| domain_status(&e))?;
            return decode(&name, buf);
        }
        let mut whole = buf.copy_to_bytes(buf.remaining());
        super::limits::check_request(&name, &whole).map_err(|e| domain_status(&e))?;
        decode(&name, &mut whole)
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

fn decode<U: Message + Default>(name: &str, buf: &mut impl Buf) -> Result<Option<U>, Status> {
    U::decode(buf).map(Some).map_err(|error| {
        Status::invalid_argument(format!("the request is not a valid {name}: {error}"))
    })
}
