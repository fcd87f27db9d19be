//! A client that knows nothing of the project: it discovers the services by
//! reflection (v1 and v1alpha), builds a request from JSON with the descriptors
//! it was sent, and reads stock, as grpcurl would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::{Buf, BufMut};
use common::{TestServer, receipt, small_network};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use spares::pb;
use tokio_stream::StreamExt;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Passes already-encoded protobuf bytes through unchanged.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

async fn reflect(channel: Channel, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(channel);
    let outbound = tokio_stream::iter(vec![ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut inbound = client
        .server_reflection_info(outbound)
        .await
        .unwrap()
        .into_inner();
    inbound
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

#[tokio::test]
async fn a_reflection_client_lists_the_services_and_reads_stock() {
    let server = TestServer::start().await;
    let mut clients = server.clients().await;
    small_network(&mut clients).await;
    clients
        .inventory
        .record_movements(pb::RecordMovementsRequest {
            movements: vec![receipt("r1", "P1", "STR", 5)],
        })
        .await
        .unwrap();
    let channel = Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let MessageResponse::ListServicesResponse(list) =
        reflect(channel.clone(), MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "NetworkService",
        "InventoryService",
        "AvailabilityService",
        "PlanningService",
    ] {
        assert!(
            names.contains(&format!("spares.v1.{service}")),
            "{service} missing from {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );

    // Fetch the file declaring the service, then every import it names, as grpcurl does.
    let mut protos: Vec<prost_types::FileDescriptorProto> = Vec::new();
    let mut wanted = vec![MessageRequest::FileContainingSymbol(
        "spares.v1.InventoryService".into(),
    )];
    while let Some(request) = wanted.pop() {
        let MessageResponse::FileDescriptorResponse(files) =
            reflect(channel.clone(), request).await
        else {
            panic!("expected descriptors");
        };
        for bytes in &files.file_descriptor_proto {
            let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
            if protos.iter().any(|p| p.name == file.name) {
                continue;
            }
            for dependency in &file.dependency {
                if !protos
                    .iter()
                    .any(|p| p.name.as_deref() == Some(dependency.as_str()))
                {
                    wanted.push(MessageRequest::FileByFilename(dependency.clone()));
                }
            }
            protos.push(file);
        }
    }
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(protos).unwrap();
    let service = pool
        .get_service_by_name("spares.v1.InventoryService")
        .unwrap();
    let method = service.methods().find(|m| m.name() == "GetStock").unwrap();

    let json = r#"{"part_id": "P1", "location_id": "STR"}"#;
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let request = DynamicMessage::deserialize(method.input(), &mut deserializer).unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    // Reflection is open; the call itself presents a key, as any client must.
    let mut call = tonic::Request::new(request.encode_to_vec());
    call.metadata_mut()
        .insert("x-api-key", server.admin_key.parse().unwrap());
    let response = grpc
        .unary(
            call,
            PathAndQuery::from_static("/spares.v1.InventoryService/GetStock"),
            RawCodec,
        )
        .await
        .unwrap()
        .into_inner();
    let response = DynamicMessage::decode(method.output(), response.as_slice()).unwrap();
    let positions = response.get_field_by_name("positions").unwrap();
    let Value::List(positions) = positions.as_ref() else {
        panic!("positions is not a list")
    };
    assert_eq!(positions.len(), 1);
    let first = positions[0].as_message().unwrap();
    assert_eq!(
        first.get_field_by_name("available").unwrap().as_u64(),
        Some(5)
    );
    assert_eq!(
        first.get_field_by_name("on_hand").unwrap().as_u64(),
        Some(5)
    );
    server.stop().await;
}

#[tokio::test]
async fn reflection_is_also_served_as_v1alpha() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let server = TestServer::start().await;
    let channel = Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = AlphaClient::new(channel);
    let outbound = tokio_stream::iter(vec![AlphaReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    }]);
    let mut inbound = client
        .server_reflection_info(outbound)
        .await
        .unwrap()
        .into_inner();
    let Some(AlphaResponse::ListServicesResponse(list)) =
        inbound.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "spares.v1.PlanningService")
    );
    server.stop().await;
}
